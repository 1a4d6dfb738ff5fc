"""``slam export RUN OUT``: load a trained run, merge its adapter, write an export folder in one rename."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import ExportError
from slam_core.model import SlamModel
from slam_core.runtime.checkpoints.io import write_dir_atomically
from slam_core.runtime.export import folder as layout
from slam_core.spec import PipelineSpec

#: The formats ``slam export --format`` writes: the self-describing folder and transformers' Voxtral.
FORMATS = ("slam", "voxtral")


def export_run(
    run: str | Path, out: str | Path, *, format: str = "slam", keep_adapter: bool = False, **options: Any
) -> Path:
    """Export the run (or checkpoint) folder ``run`` to the folder ``out``; returns ``out``.

    ``format="slam"``: the self-describing folder (:mod:`slam_core.runtime.export.folder`), the
    adapter merged into the LLM unless ``keep_adapter``. ``format="voxtral"``: a transformers
    ``VoxtralForConditionalGeneration`` folder (:mod:`slam_core.runtime.export.voxtral`;
    ``options``: ``audio_token_id``). A composition the format cannot hold is an :class:`ExportError`.
    """
    from slam_core.runtime.infer.weights import load_trained

    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; the formats are: {', '.join(FORMATS)}")
    out = Path(out)
    check_output(out)
    spec, model, checkpoint = load_trained(Path(run), require_checkpoint=True)
    model.eval()
    source = {"run": str(Path(run).resolve().name), "checkpoint": checkpoint.name}
    if format == "voxtral":
        from slam_core.runtime.export import voxtral

        if keep_adapter:
            raise ExportError("--keep-adapter: the voxtral format holds merged weights only; drop the option")
        voxtral.check_composition(spec, model)
        merge_adapter(spec, model)
        return write_dir_atomically(
            out, lambda staging: voxtral.write(spec, model, staging, source, **options), "the export"
        )
    if options:
        raise ExportError(f"options {sorted(options)} are for --format voxtral only")
    if not keep_adapter:
        merge_adapter(spec, model)
    write = lambda staging: write_folder(spec, model, staging, source, keep_adapter=keep_adapter)
    return write_dir_atomically(out, write, "the export")


def merge_adapter(spec: PipelineSpec, model: SlamModel) -> None:
    """Fold the PEFT adapter of ``model`` into its LLM's weights (nothing to do without one)."""
    try:
        model.merge_adapter()
    except NotImplementedError as exc:
        raise ExportError(f"peft {spec.peft.type}: {exc}; export with --keep-adapter") from None


def write_folder(spec: PipelineSpec, model: SlamModel, staging: Path, source: dict[str, Any], *, keep_adapter: bool):
    """Write the self-describing export of ``model`` (trained from ``spec``) into the empty folder ``staging``."""
    from safetensors.torch import save_file

    from slam_core.model import build_model

    kept = keep_adapter and spec.peft is not None
    document = layout.exported_document(spec, staging, keep_adapter=kept)
    record = {"format": layout.FORMAT, "version": layout.VERSION, "exported_from": source, "adapter": None}
    if spec.peft is not None:
        record["adapter"] = "kept" if kept else "merged"
    (staging / layout.EXPORT_FILE).write_text(json.dumps(record, indent=1) + "\n")
    (staging / layout.SPEC_FILE).write_text(json.dumps(document, indent=1) + "\n")
    exported = layout.check_loadable(staging)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed + 1)  # random inits that differ from the run's, so they are stored
        rebuilt = build_model(exported)
    stored = layout.tensors_to_store(model, rebuilt)
    del rebuilt
    save_file(stored, staging / layout.WEIGHTS_FILE, metadata={"format": "pt"})
    model.llm.tokenizer.save_pretrained(staging / layout.TOKENIZER_DIR)
    if kept:
        model.peft.save(model.llm.model, staging / layout.ADAPTER_DIR)


def check_output(out: Path) -> None:
    """Refuse an output that exists and is neither an earlier export (replaced) nor an empty folder."""
    if not out.exists() or layout.is_export(out) or (out.is_dir() and not any(out.iterdir())):
        return
    kind = "folder" if out.is_dir() else "file"
    raise ExportError(f"{out}: a {kind} that is not an export is there; choose another output folder or remove it")
