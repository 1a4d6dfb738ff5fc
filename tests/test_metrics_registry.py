"""The metric registry and ``score``'s contract: names, options, availability, input checks, no torch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from slam_core.runtime.metrics import (
    METRICS,
    MetricUnavailable,
    UnknownMetricError,
    available_metrics,
    metric_availability,
    score,
)

NAMES = ("wer", "cer", "b_wer", "u_wer", "bleu", "accuracy", "macro_f1", "cider_d", "spice", "spider")


def test_registry_names():
    assert tuple(METRICS) == NAMES
    assert set(metric_availability()) == set(NAMES)
    assert {"wer", "cer", "b_wer", "u_wer", "bleu", "accuracy", "macro_f1", "cider_d"} <= set(available_metrics())


def test_unknown_metric_lists_the_known_names():
    with pytest.raises(UnknownMetricError) as caught:
        score(["wer", "wre"], ["a"], ["a"])
    assert "'wre'" in str(caught.value) and all(name in str(caught.value) for name in NAMES)


def test_unknown_option_is_refused():
    with pytest.raises(TypeError, match=r"normalise.*known: normalize"):
        score(["wer"], ["a"], ["a"], normalise="none")


def test_results_follow_the_requested_order_once_each():
    out = score(["accuracy", "wer", "accuracy"], ["a b"], ["a c"])
    assert list(out) == ["accuracy", "wer"] and out == {"accuracy": 0.0, "wer": 0.5}
    assert score("wer", ["a"], ["a"]) == {"wer": 0.0}


def test_input_checks():
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        score(["wer"], ["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no hypotheses"):
        score(["wer"], [], [])
    with pytest.raises(ValueError, match="wer needs exactly one reference"):
        score(["wer"], ["a"], [["a", "b"]])
    with pytest.raises(ValueError, match="at least one reference"):
        score(["bleu"], ["a"], [[]])


def test_a_missing_package_makes_its_metrics_unavailable(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a))
    assert "pip install scikit-learn" in metric_availability()["macro_f1"]
    with pytest.raises(MetricUnavailable, match="scikit-learn"):
        score(["wer", "accuracy"], ["a"], ["a"])


def test_scoring_imports_no_torch():
    code = (
        "import sys; from slam_core.runtime.metrics import score; "
        "score(['wer', 'cer', 'b_wer', 'bleu', 'accuracy', 'macro_f1', 'cider_d'], ['a b', 'c'], ['a b', 'd'],"
        " [{'biasing_words': ['a']}, {'biasing_words': []}], caption_tokenizer='python'); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
