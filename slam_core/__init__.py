"""SLAM core: typed plugin contracts, discovery, pipeline specs and composition.

Importing this package imports no torch; the torch-backed parts live in
``slam_core.components`` and ``slam_core.model``.
"""

from importlib import metadata

from slam_core.records import API_VERSION, CommandSpec, ComponentKind, ComponentSpec

#: The installed distribution's version (pyproject.toml holds the only copy).
__version__ = metadata.version("slam-core")

__all__ = ["API_VERSION", "CommandSpec", "ComponentKind", "ComponentSpec", "__version__"]
