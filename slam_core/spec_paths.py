"""The input paths a spec names: found by their type, resolved against the spec file's folder, checked.

Config fields typed :data:`~slam_core.configs.InputPath` (a file or folder that is read: a
manifest, a checkpoint, a word list) are found in a validated spec, core sections and plugin
configs alike, by :func:`path_fields`: it walks nested models and the optional values, unions,
lists, tuples and mappings around them, without knowing any plugin.

The rules (docs/spec.md, "Paths"):

- a relative input path written in a spec file resolves against the folder of that file, as
  compose files and tox configs do; ``~`` is expanded (:func:`resolve_document_paths`);
- a value given with ``--set`` resolves against the working directory;
- folders that are written (``train.output_dir``, ``train.encoder_cache_dir``) are plain strings,
  relative to the working directory: a run goes where the command runs, never into the folder of
  a shipped spec;
- :func:`check_input_paths` reports every input path that does not exist, in one
  :class:`~slam_core.errors.SpecError`.

This module imports no torch.
"""

from __future__ import annotations

import copy
import os
import types
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from slam_core.configs import INPUT_PATH_MARKER
from slam_core.errors import SpecError

#: The last line of a missing-paths error.
CHECK_HINT = (
    "(relative paths in a spec file start from its folder, --set values from the working directory; "
    "`slam spec validate --no-check-paths` skips this check, for a spec meant for another machine)"
)
_UNIONS = (Union, types.UnionType)
_SEQUENCES = (list, tuple, set, frozenset)


@dataclass(frozen=True)
class PathField:
    """One input path a spec names: its dotted ``field`` (``fusion.branches.0.encoder.path``) and value."""

    field: str
    value: str


def path_fields(model: BaseModel) -> Iterator[PathField]:
    """Every :data:`~slam_core.configs.InputPath` value set in ``model`` and the models inside it."""
    for name, info in type(model).model_fields.items():
        yield from _walk(_field_annotation(info), getattr(model, name), name)


def _field_annotation(info: FieldInfo) -> Any:
    # pydantic keeps the metadata of a field's outer Annotated apart from its annotation
    return Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation


def _walk(annotation: Any, value: Any, where: str) -> Iterator[PathField]:
    if value is None:
        return
    if isinstance(value, BaseModel):  # whichever union member it is, its own fields say
        for found in path_fields(value):
            yield PathField(f"{where}.{found.field}", found.value)
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        if INPUT_PATH_MARKER in annotation.__metadata__ and isinstance(value, str):
            yield PathField(where, value)
        else:
            yield from _walk(args[0], value, where)
    elif origin in _UNIONS:
        yield from _walk_union(args, value, where)
    elif isinstance(value, Mapping) and len(args) == 2:
        for key, item in value.items():
            yield from _walk(args[1], item, f"{where}.{key}")
    elif isinstance(value, _SEQUENCES) and args:
        for index, item in enumerate(value):
            yield from _walk(_item_annotation(origin, args, index), item, f"{where}.{index}")


def _walk_union(members: tuple[Any, ...], value: Any, where: str) -> Iterator[PathField]:
    """The paths of the first member that finds any; a string one of its ``Literal`` members names is no path."""
    if isinstance(value, str) and any(get_origin(m) is Literal and value in get_args(m) for m in members):
        return
    for member in members:
        found = list(_walk(member, value, where))
        if found:
            yield from found
            return


def _item_annotation(origin: Any, args: tuple[Any, ...], index: int) -> Any:
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        return args[index] if index < len(args) else Any
    return args[0]


def resolve_path(value: str, base: Path) -> str:
    """``value`` with ``~`` expanded, made absolute against the folder ``base`` when relative."""
    expanded = os.path.expanduser(value)
    if os.path.isabs(expanded):
        return expanded
    return os.path.normpath(os.path.join(os.path.abspath(base), expanded))


def resolve_document_paths(
    document: dict[str, Any], spec: BaseModel, base: Path, from_cwd: Iterable[str] = ()
) -> dict[str, Any]:
    """A copy of the spec ``document`` whose path fields are absolute.

    ``spec`` is ``document`` validated (it says which fields are paths). A path written in
    ``document`` resolves against ``base`` (the spec file's folder), unless its field lies under
    one of the dotted keys ``from_cwd`` (the ``--set`` overrides): those resolve against the
    working directory. Fields the document does not write (defaults) are left out.
    """
    result = copy.deepcopy(document)
    overridden = [tuple(key.split(".")) for key in from_cwd]
    for found in path_fields(spec):
        parts = found.field.split(".")
        under_override = any(tuple(parts[: len(key)]) == key for key in overridden)
        _replace(result, parts, resolve_path(found.value, Path.cwd() if under_override else base))
    return result


def _replace(node: Any, parts: list[str], value: str) -> None:
    """Set ``node[parts[0]][parts[1]]...`` to ``value`` when every step exists (list steps are indexes)."""
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            key: Any = part
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            key = int(part)
        else:
            return
        if depth == len(parts) - 1:
            node[key] = value
        else:
            node = node[key]


def missing_inputs(spec: BaseModel, skip: Iterable[str] = ()) -> list[str]:
    """One line per input path of ``spec`` that does not exist (fields in ``skip`` aside): field and path."""
    skipped = set(skip)
    return [
        f"{found.field}: no such file or folder: {resolved}"
        for found in path_fields(spec)
        if found.field not in skipped
        and not os.path.exists(resolved := os.path.abspath(os.path.expanduser(found.value)))
    ]


def check_input_paths(spec: BaseModel, source: str | None = None, skip: Iterable[str] = ()) -> None:
    """Raise one :class:`SpecError` listing every input path of ``spec`` that does not exist.

    ``skip`` names dotted fields a command does not read (``slam train`` reads no ``data.test_manifest``).
    """
    problems = missing_inputs(spec, skip)
    if problems:
        raise MissingPathsError(problems, source)


class MissingPathsError(SpecError):
    """Input paths of a spec that do not exist: ``problems`` holds one ``field: ... path`` line each."""

    def __init__(self, problems: list[str], source: str | None = None):
        super().__init__(problems, source)
        self.args = (f"{self.args[0]}\n{CHECK_HINT}",)
