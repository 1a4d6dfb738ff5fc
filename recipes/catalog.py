"""The shipped recipes: find them, describe them, copy one into a folder to edit.

A recipe is a folder of this package whose name does not start with ``_`` and that holds at
least one pipeline spec: a YAML file whose top level has ``encoder`` and ``llm`` sections.
Imports no torch.
"""

from __future__ import annotations

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from slam_core.errors import SlamError

#: The folder holding the recipe folders (the package itself; ``recipes/`` in a clone).
ROOT = Path(__file__).resolve().parent
#: What a copy leaves out: Python's caches and the build's by-products.
IGNORED = ("__pycache__", "*.pyc", "*.egg-info")


class RecipeError(SlamError, ValueError):
    """A recipe that does not exist, or a copy that would overwrite something."""


@dataclass(frozen=True)
class Recipe:
    """One shipped recipe: its folder, a one-line title and its pipeline spec files."""

    name: str
    path: Path
    title: str
    specs: tuple[Path, ...]


def is_pipeline_spec(path: Path) -> bool:
    """True for a YAML file whose top level is a mapping with ``encoder`` and ``llm`` sections."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(document, dict) and {"encoder", "llm"} <= set(document)


def recipes(root: Path = ROOT) -> list[Recipe]:
    """Every recipe under ``root``, by name."""
    found = []
    for folder in sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith(("_", "."))):
        specs = tuple(path for path in sorted(folder.glob("*.yaml")) if is_pipeline_spec(path))
        if specs:
            found.append(Recipe(folder.name, folder, _title(folder, specs[0]), specs))
    return found


def find(name: str, root: Path = ROOT) -> Recipe:
    """The recipe ``name``; a :class:`RecipeError` lists the recipes (and the closest name) otherwise."""
    shipped = {recipe.name: recipe for recipe in recipes(root)}
    if name in shipped:
        return shipped[name]
    close = difflib.get_close_matches(name, list(shipped), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise RecipeError(f"no recipe named {name!r}; shipped recipes: {', '.join(shipped)}.{hint}")


def copy(name: str, destination: str | Path, root: Path = ROOT) -> list[Path]:
    """Copy the recipe ``name`` into ``destination`` (created; refused when it exists and is not empty).

    Returns the files written, relative to ``destination``.
    """
    recipe = find(name, root)
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        what = "folder is not empty" if destination.is_dir() else "path is a file"
        raise RecipeError(f"cannot copy recipe {name!r} to {destination}: the {what}; name a new or empty folder")
    shutil.copytree(recipe.path, destination, ignore=shutil.ignore_patterns(*IGNORED), dirs_exist_ok=True)
    return sorted(path.relative_to(destination) for path in destination.rglob("*") if path.is_file())


def _title(folder: Path, spec: Path) -> str:
    """The README's first heading without the recipe's name, else the spec's first comment line."""
    readme = folder / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines() if readme.is_file() else []
    lines = lines or spec.read_text(encoding="utf-8").splitlines()
    first = next((line for line in lines if line.strip()), "")
    title = first.lstrip("#").strip()
    prefix = f"{folder.name}:"
    return title[len(prefix) :].strip() if title.startswith(prefix) else title
