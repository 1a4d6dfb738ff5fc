"""Reading a fairseq checkpoint's tensors without importing or running anything its pickle names.

fairseq checkpoints pickle more than tensors: ``task_state`` holds ``fairseq.data.dictionary.Dictionary``
objects (and a sentencepiece tokenizer in fine-tuned AV-HuBERT files), ``extra_state`` numpy scalars,
``cfg`` may hold omegaconf ``DictConfig`` objects and old files an ``argparse.Namespace`` as ``args``.
``torch.load(weights_only=True)`` refuses all of them. Here the pickle is first scanned for the globals
it names (without unpickling it); every one that torch does not already allow becomes an
:class:`InertObject` subclass of that name, registered with ``torch.serialization.safe_globals``, and
the file is then read with ``torch.load(weights_only=True)``. The named modules are never imported,
constructors and ``__setstate__`` methods never run: a stand-in only records what it is given.
Globals of the modules torch blocks outright (``os``, ``sys``, ...) make the file unreadable.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError

#: Modules whose globals torch's weights-only unpickler refuses even when allow-listed.
BLOCKED_MODULES = ("os", "posix", "nt", "sys")
#: Builtin value types: constructing them from pickled data runs no user code.
BUILTIN_TYPES = {f"builtins.{t.__name__}": t for t in (dict, list, tuple, set, frozenset, int, float, str, bytes, bool)}
#: A defaultdict is pickled as ``defaultdict(factory)`` filled with SETITEMS, which torch allows on plain dicts only.
DICT_LIKE = {"collections.defaultdict": lambda *args: {}}


class UnreadableCheckpoint(CheckpointError):
    """The file cannot be read safely: not a zip checkpoint, blocked globals, or a pickle torch cannot parse."""


class InertObject:
    """Stands in for an object of a class the pickle names: keeps the arguments and state it is given."""

    pickled_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        instance = object.__new__(cls)
        instance.args, instance.state = args, None
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<inert {self.pickled_name}>"


def inert_class(name: str) -> type[InertObject]:
    """An :class:`InertObject` subclass named like the pickled global ``name`` (``module.Qualified.Name``)."""
    module, _, qualname = name.rpartition(".")
    attributes = {"__module__": module, "__qualname__": qualname, "pickled_name": name}
    return type(qualname.rpartition(".")[2] or name, (InertObject,), attributes)


def read_pickled(path: str | Path) -> tuple[Any, tuple[str, ...]]:
    """The object ``torch.save`` wrote to ``path``, other objects replaced; and the names that were replaced."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise UnreadableCheckpoint(
            f"{path}: not a zip checkpoint (torch >= 1.6 format); re-save it with torch.save, or convert its state "
            "dict to .safetensors"
        )
    names = sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    blocked = [name for name in names if name.partition(".")[0] in BLOCKED_MODULES]
    if blocked:
        raise UnreadableCheckpoint(f"{path}: refusing a pickle that references {', '.join(blocked)}")
    replaced = [name for name in names if name not in BUILTIN_TYPES and name not in DICT_LIKE]
    stand_ins = [(BUILTIN_TYPES.get(name) or DICT_LIKE.get(name) or inert_class(name), name) for name in names]
    try:
        with torch.serialization.safe_globals(stand_ins):
            blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, TypeError, ValueError, AttributeError, EOFError) as exc:
        raise UnreadableCheckpoint(f"{path}: cannot be read as a weights-only checkpoint: {exc}") from exc
    return blob, tuple(replaced)


def plain(value: Any) -> Any:
    """``value`` with stand-ins for configuration objects turned into plain dicts, lists and scalars.

    ``argparse.Namespace`` -> its attribute dict; omegaconf ``DictConfig`` / ``ListConfig`` -> dict / list
    of their ``_content``; omegaconf value nodes -> their ``_val``. Other stand-ins are kept as they are.
    """
    if isinstance(value, InertObject):
        state = value.state
        if value.pickled_name == "argparse.Namespace" and isinstance(state, Mapping):
            return plain(state)
        if isinstance(state, Mapping) and "_content" in state:  # omegaconf container
            return plain(state["_content"])
        if isinstance(state, Mapping) and "_val" in state:  # omegaconf value node
            return plain(state["_val"])
        return value
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value
