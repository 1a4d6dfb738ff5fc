"""The one decode-and-score service: what ``slam infer``, validation, ``slam train --score`` and the demo run.

For a batch, :func:`decode_batch` runs the decode policy of the model's task head:

1. ``task.prepare(samples, training=False)``;
2. when ``task.first_pass``: generate with the plain prompts, post-process, and let
   ``task.after_first_pass`` update the samples (e.g. with the biasing words that match);
3. when the task gives ``choices``: score each one as the target (the LLM's summed
   log-probability, EOS included) and answer the best, so the answer is always one of them;
   else generate with the spec's ``infer`` options;
4. ``task.postprocess`` on generated text.

:class:`Decoded` collects hypotheses with their references and samples; a :data:`Scorer`
(e.g. :func:`metrics_scorer` of the task's metrics) turns them into metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from slam_core.errors import ContractError
from slam_core.model import SlamModel
from slam_core.spec import InferSpec
from slam_core.text import tokenize_batch

#: A reference: one string, or several (e.g. five captions).
Reference = str | list[str]
#: ``scorer(hypotheses, references, samples) -> {metric: value}``.
Scorer = Callable[[list[str], list[Reference], list[dict[str, Any]]], dict[str, float]]


def generate_options(infer: InferSpec) -> dict[str, Any]:
    """``generate`` keyword arguments from the spec's ``infer`` section."""
    return infer.model_dump(exclude={"batch_size"})


@torch.no_grad()
def decode_batch(
    model: SlamModel, features: Any, feature_lengths: Any, samples: Sequence[dict[str, Any]], **options: Any
) -> list[str]:
    """The task's answers for one batch (see the module docstring); ``options`` go to ``generate``."""
    task = model.task
    samples = task.prepare(samples, training=False)
    embeds, lengths = model.encode(features, feature_lengths)
    if task.first_pass:
        samples = task.after_first_pass(samples, _generate(model, embeds, lengths, samples, options))
    choices = [task.choices(sample) for sample in samples]
    if all(c is None for c in choices):
        return _generate(model, embeds, lengths, samples, options)
    if any(c is None or len(c) == 0 for c in choices):
        raise ContractError(
            f"task head {type(task).__name__} gave answer choices for some samples of the batch but not for all"
        )
    return _choose(model, embeds, lengths, samples, [list(c) for c in choices])


def _generate(model: SlamModel, embeds, lengths, samples: Sequence[dict[str, Any]], options) -> list[str]:
    text = tokenize_batch(model.llm, model.task, samples, with_targets=False)
    return [model.task.postprocess(t) for t in model.generate_from_embeddings(embeds, lengths, text, **options)]


def _choose(model: SlamModel, embeds, lengths, samples, choices: list[list[str]]) -> list[str]:
    """Each sample's choice with the highest log-likelihood as the target (teacher forced, EOS included)."""
    rows = [(index, choice) for index, options in enumerate(choices) for choice in options]
    scores: list[float] = []
    chunk = max(len(samples), 1)  # score the choices in batches the size of the decoded one
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        picked = torch.tensor([index for index, _ in part], device=embeds.device)
        targets = [{**samples[index], "target": choice} for index, choice in part]
        text = tokenize_batch(model.llm, model.task, targets, with_targets=True)
        scores += model.sequence_log_likelihood(embeds[picked], lengths[picked.to(lengths.device)], text).tolist()
    best: dict[int, tuple[float, str]] = {}
    for (index, choice), value in zip(rows, scores, strict=True):
        if index not in best or value > best[index][0]:
            best[index] = (value, choice)
    return [best[index][1] for index in range(len(samples))]


@dataclass
class Decoded:
    """Hypotheses in decoding order, each with the task's references and its sample."""

    hypotheses: list[str] = field(default_factory=list)
    references: list[Reference | None] = field(default_factory=list)  # None: the sample has no target
    samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, model: SlamModel, samples: Sequence[dict[str, Any]], hypotheses: Sequence[str]) -> None:
        """Append a batch's hypotheses with ``model.task.references`` of its samples (``None`` without a target)."""
        self.hypotheses += hypotheses
        self.references += [model.task.references(s) if "target" in s else None for s in samples]
        self.samples += samples

    def score(self, scorer: Scorer) -> dict[str, float]:
        return {name: float(value) for name, value in scorer(self.hypotheses, self.references, self.samples).items()}


def decode_batches(model: SlamModel, batches: Iterable[Any], options: dict[str, Any], device: Any = None) -> Decoded:
    """Decode every batch (moved to ``device`` when given) in eval mode with ``options``."""
    model.eval()
    decoded = Decoded()
    for batch in batches:
        if device is not None:
            batch = batch.to(device)
        hypotheses = decode_batch(model, batch.features, batch.feature_lengths, batch.samples, **options)
        decoded.add(model, batch.samples, hypotheses)
    return decoded


def metrics_scorer(metrics: Sequence[str], **options: Any) -> Scorer:
    """A scorer computing ``metrics`` by name (:func:`slam_core.runtime.metrics.score`)."""
    from slam_core.runtime.metrics import score

    names = list(metrics)

    def scorer(hypotheses, references, samples):
        return score(names, hypotheses, references, samples, **options)

    return scorer
