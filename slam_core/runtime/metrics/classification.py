"""Accuracy and macro-F1 over class labels (scikit-learn), labels stripped and lower-cased."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import accuracy_score, f1_score

from slam_core.runtime.metrics.normalize import normalize_label


def accuracy(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of hypotheses whose normalised label equals the reference's."""
    return float(accuracy_score([normalize_label(r) for r in references], [normalize_label(h) for h in hypotheses]))


def macro_f1(hypotheses: Sequence[str], references: Sequence[str], *, labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: the classes in the references).

    A hypothesis outside the label set (e.g. free text from an LLM) is a miss for its true class
    but adds no class of its own; a class never predicted has F1 0 (``zero_division=0``).
    """
    y_true = [normalize_label(r) for r in references]
    y_pred = [normalize_label(h) for h in hypotheses]
    classes = sorted({normalize_label(x) for x in labels} if labels is not None else set(y_true))
    return float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))
