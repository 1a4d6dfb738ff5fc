"""``slam infer``: decode a manifest in batches into a hypotheses jsonl."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from slam_core.spec import PipelineSpec

#: Manifest fields not copied into the hypotheses file.
DROPPED_FIELDS = frozenset({"source"})


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

    Each line of ``output`` holds the sample's ``key``, ``hypothesis`` (post-processed by the
    task), the reference ``target`` when the manifest has one, and its other task fields. The
    file is written under a temporary name and renamed when complete.
    """
    from slam_core.model import build_model
    from slam_core.runtime.data.loader import build_batches
    from slam_core.runtime.infer.weights import load_trained_weights

    if manifest is not None:
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"test_manifest": str(manifest)})})
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(spec, registry)
    if checkpoint is not None:
        load_trained_weights(model, checkpoint)
    model = model.to(device).eval()
    batches = build_batches(spec, "test", model.preprocessor(), modality=model.modality)
    batches.set_epoch(0)
    options = spec.infer.model_dump(exclude={"batch_size"})
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".tmp-{output.name}")
    records: dict[str, dict[str, Any]] = {}
    for batch in batches:
        batch = batch.to(device)
        hypotheses = model.decode(batch.features, batch.feature_lengths, batch.samples, **options)
        for sample, hypothesis in zip(batch.samples, hypotheses, strict=True):
            # the first decode of a key wins: padding repeats a sample on the last step of a sharded run
            records.setdefault(sample["key"], _record(sample, hypothesis, model.task))
    order = [entry.key for entry in batches.dataset.entries if entry.key in records]  # the manifest's order
    with open(temporary, "w", encoding="utf-8") as handle:
        for key in order:
            handle.write(json.dumps(records[key], ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, output)
    return output


def _record(sample: dict[str, Any], hypothesis: str, task) -> dict[str, Any]:
    record = {"key": sample["key"], "hypothesis": hypothesis}
    record.update({name: value for name, value in sample.items() if name not in DROPPED_FIELDS and name != "key"})
    if "target" in sample:
        record["references"] = task.references(sample)  # what `slam eval` scores against
    return record
