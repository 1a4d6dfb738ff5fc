"""The self-describing export: one folder that rebuilds a trained model with no original spec, run or data.

Layout (``slam export RUN OUT``)::

    slam-export.json     format, version, what it was exported from, whether the adapter was merged
    spec.json            the run's spec: no data manifests, no output folders; every file a component
                         reads is copied under inputs/ and named by a path relative to this folder;
                         no peft section once the adapter is merged
    inputs/<field>/...   the files and folders the spec's components read (an LLM directory, an encoder
                         checkpoint, a word list), each under the dotted field that names it
    weights.safetensors  every tensor of the model that building spec.json does not give by itself:
                         the trained projector and adapters, the merged LLM layers, randomly
                         initialised frozen weights
    tokenizer/           the LLM's tokenizer (save_pretrained), for tools outside SLAM
    adapter/             with --keep-adapter: the PEFT adapter in its library's format (peft's folder)

Loading (:func:`load_export_spec`, then :func:`load_export_weights` into the model built from it)
builds ``spec.json`` as any spec and copies ``weights.safetensors`` over it; what it gives is
checked against the model by name and shape. The folder is written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError, ExportError, SpecError
from slam_core.runtime.checkpoints import layout
from slam_core.spec import PipelineSpec
from slam_core.spec_paths import path_fields

EXPORT_FILE = "slam-export.json"
SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.safetensors"
INPUTS_DIR, TOKENIZER_DIR, ADAPTER_DIR = "inputs", "tokenizer", "adapter"
FORMAT, VERSION = "slam", 1
#: Folders of the run that an exported spec must not point back to (reset to their defaults).
WRITTEN_FIELDS = ("output_dir", "encoder_cache_dir")


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``slam export`` (any format)."""
    return (Path(path) / EXPORT_FILE).is_file()


def read_record(folder: Path, expected: str | None = FORMAT) -> dict[str, Any]:
    """The ``slam-export.json`` of ``folder``, checked to be of format ``expected``."""
    file = Path(folder) / EXPORT_FILE
    try:
        record = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: not an export folder (no {EXPORT_FILE}; slam export writes one)") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: unreadable: {exc}") from None
    if not isinstance(record, dict) or "format" not in record:
        raise CheckpointError(f"{file}: not an export record (no format)")
    if expected is not None and record["format"] != expected:
        raise CheckpointError(
            f"{folder}: an export in the {record['format']!r} format, which loads with its own library "
            f"(docs/export.md); slam loads the {expected!r} format"
        )
    if record["format"] == FORMAT and record.get("version") != VERSION:
        raise CheckpointError(f"{file}: export version {record.get('version')!r}; this slam reads version {VERSION}")
    return record


def load_export_spec(folder: str | Path, overrides: Sequence[str] = ()) -> PipelineSpec:
    """The validated spec of an export folder, with ``overrides`` (``infer.max_new_tokens=8``) applied."""
    from slam_core.spec import load_spec

    folder = Path(folder)
    read_record(folder)
    return load_spec(folder / SPEC_FILE, overrides=list(overrides))


def load_export_weights(model: torch.nn.Module, folder: str | Path) -> Path:
    """Copy the export's weights into ``model`` (built from its spec); returns the weights file."""
    file = Path(folder) / WEIGHTS_FILE
    saved = layout.load_safetensors(file, "exported weights")
    own = model.state_dict()
    layout.check_tensors(file, saved, {name: tuple(t.shape) for name, t in own.items()}, complete=False)
    with torch.no_grad():
        for name, tensor in saved.items():
            own[name].copy_(tensor)
    return file


def exported_document(spec: PipelineSpec, folder: Path, *, keep_adapter: bool) -> dict[str, Any]:
    """The spec document of the export: inputs copied into ``folder``, data and run folders dropped."""
    document = spec.model_dump(mode="json")
    copied: dict[str, str] = {}
    for found in path_fields(spec):
        if found.field.startswith("data."):
            _set(document, found.field, None)
            continue
        source = str(Path(found.value).resolve())
        if source not in copied:
            copied[source] = _copy_input(Path(source), folder / INPUTS_DIR / found.field)
        _set(document, found.field, copied[source])
    for name in WRITTEN_FIELDS:
        document["train"].pop(name, None)
    if not keep_adapter:
        document["peft"] = None
    return document


def _copy_input(source: Path, destination: Path) -> str:
    """Copy a file or folder the spec reads under ``destination``; its path relative to the export folder."""
    destination.mkdir(parents=True)
    target = destination / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return str(target.relative_to(destination.parent.parent))


def _set(document: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = document
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value


def tensors_to_store(model: torch.nn.Module, rebuilt: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors of ``model`` that ``rebuilt`` (the export's spec, built afresh) does not already hold."""
    own, fresh = model.state_dict(), rebuilt.state_dict()
    extra = sorted(set(fresh) ^ set(own))
    if extra:
        raise ExportError(
            f"the model built from the exported spec has other tensors than the trained one, e.g. {extra[:3]}; "
            "a component's build depends on something the spec does not say"
        )
    return {
        name: tensor.detach().to("cpu").contiguous().clone()
        for name, tensor in own.items()
        if tensor.shape != fresh[name].shape or not torch.equal(tensor.cpu(), fresh[name].cpu())
    }


def check_loadable(folder: Path) -> PipelineSpec:
    """The export's spec as a loader reads it; a spec problem is a bug of the export, named as such."""
    try:
        return load_export_spec(folder)
    except SpecError as exc:
        raise ExportError(f"the exported spec does not validate ({exc}); please report this") from None
