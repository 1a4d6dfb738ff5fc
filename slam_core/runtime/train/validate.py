"""Validation: loss and token accuracy over the valid split, plus the task's metrics when given a scorer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from slam_core.model import SlamModel
from slam_core.runtime.data.batch import Batch
from slam_core.runtime.train import distributed, rng
from slam_core.runtime.train.encoder_cache import EncoderCaches
from slam_core.runtime.train.engines import Engine
from slam_core.spec import InferSpec

#: ``scorer(hypotheses, references, samples) -> {metric: value}``, e.g. a partial of slam_core.runtime.metrics.score.
Scorer = Callable[[list[str], list[str], list[dict[str, Any]]], dict[str, float]]


def generate_options(infer: InferSpec) -> dict[str, Any]:
    """``generate`` keyword arguments from the infer section."""
    return infer.model_dump(exclude={"batch_size"})


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
    hypotheses: list[str] = []
    references: list[str] = []
    samples: list[dict[str, Any]] = []
    options = generate_options(infer) | ({"synced_gpus": True} if sharded else {})
    try:
        with rng.isolated(), torch.no_grad():
            iterator, previous = iter(batches), None
            while True:
                batch = next(iterator, None)
                if sharded and distributed.all_sum([float(batch is not None)], engine.device)[0] == 0:
                    break
                if batch is None and not sharded:
                    break
                real = batch is not None
                if not real and previous is None:
                    raise RuntimeError(
                        f"rank {distributed.rank()} has no validation batches while other ranks do; a sharded "
                        "engine needs every rank in every forward pass: give each rank at least one batch"
                    )
                batch = (batch if real else previous).to(engine.device)
                previous = batch
                text = model.text_inputs(batch.samples)
                with cache.batch(batch.samples) if cache else contextlib.nullcontext():
                    out = engine.forward(batch, text)
                    decoded = _decode(engine, batch, options) if scorer else None
                if real:
                    tokens = out.target_tokens
                    totals += torch.tensor([float(out.loss) * tokens, tokens, float(out.token_accuracy) * tokens])
                    if decoded is not None:
                        hypotheses += decoded
                        references += [model.task.references(s) for s in batch.samples]
                        samples += list(batch.samples)
    finally:
        engine.train(True)
    loss_sum, tokens, correct = distributed.all_sum(totals.tolist(), engine.device)
    metrics = {"loss": loss_sum / max(tokens, 1.0), "token_accuracy": correct / max(tokens, 1.0)}
    if scorer is not None:
        metrics.update(_score(scorer, hypotheses, references, samples))
    return metrics


def _decode(engine: Engine, batch: Batch, options: dict[str, Any]) -> list[str]:
    with engine.decoding() as model, engine.autocast():
        return model.decode(batch.features, batch.feature_lengths, batch.samples, **options)


def _score(scorer: Scorer, hypotheses: list[str], references: list[str], samples: Sequence[dict]) -> dict[str, float]:
    """Score every rank's decodes together on rank 0 and share the result."""
    parts = distributed.all_gather((hypotheses, references, list(samples)))
    metrics = None
    if distributed.rank() == 0:
        merged = [[item for part in parts for item in part[field]] for field in range(3)]
        metrics = {name: float(value) for name, value in scorer(*merged).items()}
    return distributed.broadcast(metrics)
