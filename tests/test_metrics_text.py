"""BLEU (sacrebleu), accuracy and macro-F1 (scikit-learn) through ``slam_core.runtime.metrics.score``."""

from __future__ import annotations

import pytest

from slam_core.runtime.metrics import score

# sacrebleu's README example: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ...)
README_SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
README_REF_STREAMS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]


def test_bleu_matches_sacrebleus_documented_example():
    per_hypothesis = [list(refs) for refs in zip(*README_REF_STREAMS, strict=True)]
    assert score(["bleu"], README_SYS, per_hypothesis)["bleu"] == pytest.approx(48.53, abs=0.005)


def test_bleu_matches_huggingface_evaluates_sacrebleu_example():
    # evaluate-metric/sacrebleu README: score 100.0
    refs = [["hello there general kenobi", "hello there !"], ["foo bar foobar", "foo bar foobar"]]
    assert score(["bleu"], ["hello there general kenobi", "foo bar foobar"], refs)["bleu"] == pytest.approx(100.0)


def test_bleu_allows_a_different_number_of_references_per_hypothesis():
    hyps = ["the cat sat on the mat today", "a dog ran in the park"]
    refs = [["the cat sat on the mat today"], ["a dog ran in the park", "a dog was running in a park"]]
    assert score(["bleu"], hyps, refs)["bleu"] == pytest.approx(100.0)


def test_bleu_tokenize_option_reaches_sacrebleu():
    hyp, ref = ["the cat sat on the mat."], ["the cat sat on the mat ."]
    assert score(["bleu"], hyp, ref)["bleu"] == pytest.approx(100.0)  # 13a splits the final period
    assert score(["bleu"], hyp, ref, bleu_tokenize="none")["bleu"] < 100.0


def test_accuracy_over_stripped_lower_cased_labels():
    out = score(["accuracy"], [" Dog", "cat ", "bird", "dog"], ["dog", "Cat", "dog", "dog"])
    assert out == {"accuracy": 0.75}


def test_macro_f1_by_hand():
    # dog: P 1/2 R 1/2 F 1/2;  cat: P 2/3 R 1 F 4/5;  bird: never predicted, F 0  -> mean 13/30
    refs = ["dog", "dog", "cat", "cat", "bird"]
    hyps = ["dog", "cat", "cat", "cat", "dog"]
    assert score(["macro_f1"], hyps, refs)["macro_f1"] == pytest.approx(13 / 30)


def test_macro_f1_averages_over_reference_classes_only():
    # "it is a cat" is a miss for class cat but adds no class: (1 + 0) / 2
    assert score(["macro_f1"], ["dog", "it is a cat"], ["dog", "cat"])["macro_f1"] == pytest.approx(0.5)
    # an explicit label set counts a class absent from both sides as F1 0: (1 + 0 + 0) / 3
    out = score(["macro_f1"], ["dog", "it is a cat"], ["dog", "cat"], labels=["Dog", "cat", "bird"])
    assert out["macro_f1"] == pytest.approx(1 / 3)
