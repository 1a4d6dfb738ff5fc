"""SLAM core: typed plugin contracts, discovery, pipeline specs and composition.

Importing this package imports no torch; the torch-backed parts live in
``slam_core.components`` and ``slam_core.model``.
"""

from slam_core.records import API_VERSION, ComponentKind, ComponentSpec

__version__ = "0.1.0"

__all__ = ["API_VERSION", "ComponentKind", "ComponentSpec", "__version__"]
