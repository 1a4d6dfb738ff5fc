"""Validation: loss and token accuracy over the valid split, plus the task's metrics when given a scorer.

Decoding and scoring go through the runtime's decode-and-score service
(:mod:`slam_core.runtime.infer.service`), as ``slam infer`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from slam_core.model import SlamModel
from slam_core.runtime.data.batch import Batch
from slam_core.runtime.infer.service import Decoded, Scorer, decode_batch, generate_options
from slam_core.runtime.train import distributed, rng
from slam_core.runtime.train.encoder_cache import EncoderCaches
from slam_core.runtime.train.engines import Engine
from slam_core.spec import InferSpec

__all__ = ["Scorer", "validate"]


def validate(
    engine: Engine,
    model: SlamModel,
    batches: Iterable[Batch],
    *,
    infer: InferSpec,
    scorer: Scorer | None = None,
    cache: EncoderCaches | None = None,
    sharded: bool = False,
) -> dict[str, float]:
    """Token-weighted loss and accuracy over every rank's batches, and ``scorer``'s metrics of the decoded text.

    Runs in eval mode without touching the RNG. With a ``sharded`` engine every rank must run
    the same number of forward passes, so a rank out of batches repeats its last one (unscored)
    until all are done, and generation keeps ranks in step (``synced_gpus``).
    """
    engine.train(False)
    totals = torch.zeros(3, dtype=torch.float64)  # loss × tokens, tokens, correct tokens
    decoded = Decoded()
    options = generate_options(infer) | ({"synced_gpus": True} if sharded else {})
    try:
        with rng.isolated(), torch.no_grad():
            for batch, real in _in_step(batches, engine, sharded):
                text = model.text_inputs(batch.samples)
                with cache.batch(batch.samples) if cache else contextlib.nullcontext():
                    out = engine.forward(batch, text)
                    hypotheses = _decode(engine, batch, options) if scorer else None
                if real:
                    tokens = out.target_tokens
                    totals += torch.tensor([float(out.loss) * tokens, tokens, float(out.token_accuracy) * tokens])
                    if hypotheses is not None:
                        decoded.add(model, batch.samples, hypotheses)
    finally:
        engine.train(True)
    loss_sum, tokens, correct = distributed.all_sum(totals.tolist(), engine.device)
    metrics = {"loss": loss_sum / max(tokens, 1.0), "token_accuracy": correct / max(tokens, 1.0)}
    if scorer is not None:
        metrics.update(_score(scorer, decoded))
    return metrics


def _in_step(batches: Iterable[Batch], engine: Engine, sharded: bool) -> Iterator[tuple[Batch, bool]]:
    """``(batch on the engine's device, real)``; a sharded rank out of batches repeats its last (not real)."""
    iterator, previous = iter(batches), None
    while True:
        batch = next(iterator, None)
        if sharded and distributed.all_sum([float(batch is not None)], engine.device)[0] == 0:
            return
        if batch is None and not sharded:
            return
        if batch is None and previous is None:
            raise RuntimeError(
                f"rank {distributed.rank()} has no validation batches while other ranks do; a sharded "
                "engine needs every rank in every forward pass: give each rank at least one batch"
            )
        previous = (batch if batch is not None else previous).to(engine.device)
        yield previous, batch is not None


def _decode(engine: Engine, batch: Batch, options: dict[str, Any]) -> list[str]:
    with engine.decoding() as model, engine.autocast():
        return decode_batch(model, batch.features, batch.feature_lengths, batch.samples, **options)


def _score(scorer: Scorer, decoded: Decoded) -> dict[str, float]:
    """Score every rank's decodes together on rank 0 and share the result."""
    parts = distributed.all_gather((decoded.hypotheses, decoded.references, decoded.samples))
    metrics = None
    if distributed.rank() == 0:
        merged = Decoded(*[[item for part in parts for item in part[field]] for field in range(3)])
        metrics = merged.score(scorer)
    return distributed.broadcast(metrics)
