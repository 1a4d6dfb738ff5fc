"""Fake installed distributions for discovery tests, built without pip.

A :class:`FakeSite` is a folder that plays the part of a ``site-packages``: each
distribution is a ``<name>-<version>.dist-info`` folder (``METADATA`` and
``entry_points.txt``) next to the plugin modules it names. Put the folder on ``sys.path``
(in-process tests) or on ``PYTHONPATH`` (subprocess tests) and ``importlib.metadata``
finds the distributions exactly as it finds pip-installed ones.

The ``*_source`` helpers write the source of small plugin modules; ``COMPONENT_HOOKS``
maps each component kind to the hook that declares it.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path

from slam_core.hookspecs import HOOK_FOR_KIND
from slam_core.plugins import ENTRY_POINT_GROUP

#: The imports every generated plugin module starts with.
PREAMBLE = """\
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.hookspecs import hookimpl
from slam_core.records import API_VERSION, ComponentSpec
"""


def config_source(
    name: str, *, class_name: str = "Config", extra: str | None = "forbid", literal: str | None = None, fields: str = ""
) -> str:
    """Source of a pydantic config class whose ``type`` literal is ``literal`` (default ``name``)."""
    literal = name if literal is None else literal
    model_config = f"    model_config = ConfigDict(extra={extra!r})\n" if extra is not None else ""
    body = textwrap.indent(textwrap.dedent(fields).strip(), "    ")
    return f"\n\nclass {class_name}(BaseModel):\n{model_config}    type: Literal[{literal!r}] = {literal!r}\n" + (
        f"{body}\n" if body else ""
    )


def hook_source(kind: str, records: str) -> str:
    """Source of the hook for ``kind`` returning the Python expression ``records``."""
    return f"\n\n@hookimpl\ndef {HOOK_FOR_KIND[kind]}():\n    return {records}\n"


def component_source(
    kind: str, name: str, *, api: str = "1.0", factory: str = "fake_factories:build", fields: str = ""
) -> str:
    """A complete, well-formed plugin module declaring one component ``name`` of ``kind``."""
    return (
        PREAMBLE
        + config_source(name, fields=fields)
        + hook_source(kind, f"[ComponentSpec({name!r}, Config, {factory!r}, api={api!r})]")
    )


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


class FakeSite:
    """A folder of fake installed distributions and their plugin modules."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def add_dist(
        self,
        name: str,
        version: str = "1.0.0",
        *,
        entry_points: dict[str, str] | None = None,
        modules: dict[str, str] | None = None,
        metadata: str | None = None,
        group: str = ENTRY_POINT_GROUP,
    ) -> Path:
        """Write a distribution; returns its dist-info folder.

        ``entry_points`` maps entry-point names to values (``"module"`` or ``"module:attr"``) in
        ``group``; ``modules`` maps dotted module names to their source (packages get an
        ``__init__.py``). ``metadata`` replaces the whole ``METADATA`` text when given.
        """
        for module, source in (modules or {}).items():
            self.write_module(module, source)
        dist_info = self.root / f"{_normalise(name)}-{version}.dist-info"
        dist_info.mkdir()
        if metadata is None:
            metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        (dist_info / "METADATA").write_text(metadata, encoding="utf-8")
        if entry_points:
            lines = [f"[{group}]", *(f"{ep} = {value}" for ep, value in entry_points.items())]
            (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        importlib.invalidate_caches()  # the path finders and importlib.metadata cache folder listings
        return dist_info

    def add_plugin(
        self,
        dist: str,
        source: str,
        *,
        version: str = "1.0.0",
        entry_point: str | None = None,
        module: str | None = None,
    ) -> str:
        """One distribution with one plugin module and one entry point; returns the module name.

        The entry point is named like the distribution and the module is ``<dist>_plugin``
        (with underscores) unless given.
        """
        module = module or f"{_normalise(dist)}_plugin"
        self.add_dist(dist, version, entry_points={entry_point or dist: module}, modules={module: source})
        return module

    def write_module(self, dotted: str, source: str) -> Path:
        parts = dotted.split(".")
        folder = self.root.joinpath(*parts[:-1])
        for depth in range(1, len(parts)):
            package = self.root.joinpath(*parts[:depth])
            package.mkdir(exist_ok=True)
            (package / "__init__.py").touch()
        path = folder / f"{parts[-1]}.py"
        path.write_text(source, encoding="utf-8")
        return path

    def loaded_modules(self) -> list[str]:
        """Names of the modules in ``sys.modules`` that were imported from this site."""
        root = str(self.root.resolve())
        return [
            name
            for name, module in list(sys.modules.items())
            if str(Path(getattr(module, "__file__", None) or "/").resolve()).startswith(root)
        ]

    def unload(self) -> None:
        """Forget every module imported from this site, so that the next test starts clean."""
        for name in self.loaded_modules():
            del sys.modules[name]
        importlib.invalidate_caches()
