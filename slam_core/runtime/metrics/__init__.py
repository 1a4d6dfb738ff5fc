"""Scoring for ``slam eval``: WER/CER, B-WER/U-WER, BLEU, accuracy, macro-F1, CIDEr-D, SPICE, SPIDEr.

One entry point, ``score(names, hypotheses, references, samples=None, **options) -> {name: value}``;
``metric_availability()`` says which metrics can run here and why not. Scales are the libraries':
error rates and accuracy/F1 are fractions, BLEU is 0-100 (sacrebleu), CIDEr-D is pycocoevalcap's
(x10, about 0-10), SPICE a fraction. Imports no torch; each metric imports its library on use.
"""

from slam_core.runtime.metrics.errors import MetricUnavailable, UnknownMetricError
from slam_core.runtime.metrics.rates import EditCounts
from slam_core.runtime.metrics.registry import (
    DEFAULT_OPTIONS,
    METRICS,
    Metric,
    available_metrics,
    get_metric,
    metric_availability,
    score,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "METRICS",
    "EditCounts",
    "Metric",
    "MetricUnavailable",
    "UnknownMetricError",
    "available_metrics",
    "get_metric",
    "metric_availability",
    "score",
    "utterance_errors",
]


def utterance_errors(hypotheses, references, *, unit="word", normalize="whisper") -> list[EditCounts]:
    """Per-utterance hits, substitutions, deletions and insertions (see ``slam_core.runtime.metrics.wer``)."""
    from slam_core.runtime.metrics.wer import utterance_errors as compute

    return compute(hypotheses, references, unit=unit, normalize=normalize)
