"""``slam infer``: decode a manifest in batches into a hypotheses jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import RunFolderError
from slam_core.runtime.checkpoints.io import write_atomic, write_failure
from slam_core.runtime.infer.service import decode_batches, generate_options
from slam_core.spec import PipelineSpec

#: Manifest fields not copied into the hypotheses file.
DROPPED_FIELDS = frozenset({"source"})
#: The ``error`` of a skipped sample whose reason did not reach this process (the log says it).
SKIPPED_WHILE_LOADING = "skipped as a bad sample while loading (data.bad_samples: skip); the log says why"


def decode(
    spec: PipelineSpec,
    output: str | Path,
    *,
    checkpoint: str | Path | None = None,
    manifest: str | Path | None = None,
    registry=None,
    device: str | None = None,
) -> Path:
    """Decode ``manifest`` (default ``data.test_manifest``) with the ``infer`` settings.

    ``checkpoint`` is a checkpoint folder or a run folder (its best, else latest, checkpoint).
    Each line of ``output`` holds the sample's ``key``, ``hypothesis`` (post-processed by the
    task), the task's ``references`` when the manifest has a ``target``, and its other task
    fields, in the manifest's order. A sample skipped under ``data.bad_samples: skip`` has a line
    with its ``key`` and ``error`` (why) instead. The file is written under a temporary name and
    renamed when complete.
    """
    from slam_core.runtime.data.loader import build_batches
    from slam_core.runtime.data.manifest import read_manifest
    from slam_core.runtime.infer.weights import build_as_trained, load_trained_weights, ready_for_decoding

    if manifest is not None:
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"test_manifest": str(manifest)})})
    check_output(Path(output))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_as_trained(spec, registry)
    if checkpoint is not None:
        load_trained_weights(model, checkpoint)
    model = ready_for_decoding(model, device)
    batches = build_batches(spec, "test", model.preprocessor(), modality=model.modality, task=model.task)
    batches.set_epoch(0)
    decoded = decode_batches(model, batches, generate_options(spec.infer), device)
    records: dict[str, dict[str, Any]] = {}
    for sample, hypothesis, references in zip(decoded.samples, decoded.hypotheses, decoded.references, strict=True):
        # the first decode of a key wins: padding repeats a sample on the last step of a sharded run
        records.setdefault(sample["key"], _record(sample, hypothesis, references))
    order = [entry.key for entry in read_manifest(spec.data.test_manifest)]  # the manifest's order
    skipped = batches.skip_reasons
    lines = [records.get(key) or {"key": key, "error": skipped.get(key, SKIPPED_WHILE_LOADING)} for key in order]
    return _write_jsonl(Path(output), lines)


def _record(sample: dict[str, Any], hypothesis: str, references) -> dict[str, Any]:
    record = {"key": sample["key"], "hypothesis": hypothesis}
    record.update({name: value for name, value in sample.items() if name not in DROPPED_FIELDS and name != "key"})
    if references is not None:
        record["references"] = references  # what `slam eval` scores against
    return record


def check_output(output: Path) -> None:
    """Refuse, before decoding, an output path that is a folder or lies under a file."""
    if output.is_dir():
        raise RunFolderError(f"{output}: is a folder; name the hypotheses file to write (e.g. {output / 'hyps.jsonl'})")
    for parent in output.parents:
        if parent.exists() and not parent.is_dir():
            raise RunFolderError(f"{output}: cannot be written: {parent} is a file, not a folder")


def _write_jsonl(output: Path, records: list[dict[str, Any]]) -> Path:
    """Write ``records`` to ``output`` in one rename."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8"))
    except OSError as exc:
        raise RunFolderError(f"{output}: cannot write the hypotheses: {write_failure(output, exc)}") from exc
    return output
