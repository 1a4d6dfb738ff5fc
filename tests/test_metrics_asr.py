"""WER, CER, B-WER and U-WER (``slam_core.runtime.metrics``): hand-computed cases and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slam_core.runtime.metrics import EditCounts, score, utterance_errors
from slam_core.runtime.metrics.normalize import get_normalizer

# Expected values from OpenAI Whisper's own tests (openai/whisper tests/test_normalizer.py).
OPENAI_WHISPER_CASES = [
    ("Mr. Park visited Assoc. Prof. Kim Jr.", "mister park visited associate professor kim junior"),
    ("Let's", "let us"),
    ("she's been like", "she has been like"),
    ("nineteen ninety nine", "1999"),
    ("two point five million", "2500000"),
    ("$20 million", "$20000000"),
    ("three thousand twenty nine", "3029"),
    ("ninety percent", "90%"),
    ("two dollars and seventy cents", "$2.70"),
    ("mobilisation", "mobilization"),
    ("RC232", "rc 232"),
]


@pytest.mark.parametrize(("text", "expected"), OPENAI_WHISPER_CASES)
def test_whisper_normaliser_gives_openai_whispers_outputs(text, expected):
    assert get_normalizer("whisper")(text) == expected


def test_whisper_normaliser_has_no_rules_openai_whisper_lacks():
    # whisper_normalizer 0.1.15 maps "cause" -> "because" and "kinda" -> "kind of"; OpenAI Whisper does not.
    assert get_normalizer("whisper")("the cause kinda sorta dunno") == "the cause kinda sorta dunno"


def test_basic_and_none_normalisers():
    assert get_normalizer("basic")("Hello, [noise] World!") == "hello world"
    assert get_normalizer("none")("  Hello,\n World! ") == "Hello, World!"
    with pytest.raises(ValueError, match="whisper, basic, none"):
        get_normalizer("english")


def test_wer_counts_substitution_and_deletion():
    # the cat sat on the mat -> the cat sit on mat: sat->sit (S), the (D); 2 edits / 6 words
    assert score(["wer"], ["the cat sit on mat"], ["the cat sat on the mat"]) == {"wer": pytest.approx(2 / 6)}


@pytest.mark.parametrize(
    ("normalize", "expected"),
    [
        ("whisper", 0.0),  # both sides become "mister smith paid $25"
        ("basic", 4 / 6),  # mr smith paid twenty five dollars / mister smith paid 25: 2 S + 2 D
        ("none", 5 / 6),  # Mr. Smith paid twenty five dollars. / mister smith paid $25: 3 S + 2 D
    ],
)
def test_normalisation_changes_wer_as_worked_by_hand(normalize, expected):
    out = score(["wer"], ["mister smith paid $25"], ["Mr. Smith paid twenty five dollars."], normalize=normalize)
    assert out["wer"] == pytest.approx(expected)


def test_whisper_normalisation_spelling_and_fillers():
    refs, hyps = ["the colour of the sky", "I think so"], ["the color of the sky", "um I think so"]
    assert score(["wer"], hyps, refs)["wer"] == 0.0
    assert score(["wer"], hyps, refs, normalize="none")["wer"] == pytest.approx(2 / 8)  # colour S, um I


def test_wer_is_corpus_level_not_a_mean_of_utterances():
    # 0 errors in 4 words + 1 in 1 word: 1/5, not (0 + 1) / 2
    assert score(["wer"], ["a b c d", "x"], ["a b c d", "e"], normalize="none")["wer"] == pytest.approx(0.2)


def test_cer_counts_characters_with_spaces():
    assert score(["cer"], ["abd"], ["abc"], normalize="none")["cer"] == pytest.approx(1 / 3)
    assert score(["cer"], ["ab ce"], ["ab cd"], normalize="none")["cer"] == pytest.approx(1 / 5)
    assert score(["cer"], ["Twenty one"], ["21"])["cer"] == 0.0  # normalised first


def test_empty_references():
    # an empty reference adds its insertions and no reference words
    assert score(["wer"], ["x y", "a b"], ["", "a b"])["wer"] == pytest.approx(2 / 2)
    assert score(["wer"], [""], [""])["wer"] == 0.0
    assert score(["wer"], [""], ["(laughs)"])["wer"] == 0.0  # the normaliser empties the reference
    assert score(["wer"], ["x"], [""])["wer"] == math.inf


def test_utterance_errors_are_per_utterance_alignment_counts():
    counts = utterance_errors(["a b c", "a b", "q"], ["a x c d", "a b", ""], normalize="none")
    assert counts == [EditCounts(hits=2, substitutions=1, deletions=1), EditCounts(hits=2), EditCounts(insertions=1)]
    assert counts[0].reference_length == 4 and counts[0].errors == 2
    assert utterance_errors(["abd"], ["abc"], unit="char")[0] == EditCounts(hits=2, substitutions=1)


WORDS = st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta", "omega"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(WORDS, WORDS)
def test_properties_of_wer(ref, hyp):
    ref_text, hyp_text = " ".join(ref), " ".join(hyp)
    assert score(["wer"], [ref_text], [ref_text], normalize="none")["wer"] == 0.0
    assert score(["wer"], [hyp_text], [ref_text], normalize="none")["wer"] >= 0.0
    (counts,) = utterance_errors([hyp_text], [ref_text], normalize="none")
    assert counts.hits + counts.substitutions + counts.deletions == len(ref)
    assert counts.hits + counts.substitutions + counts.insertions == len(hyp)


@settings(max_examples=60, deadline=None)
@given(WORDS, st.data())
def test_one_substituted_word_in_k_gives_one_over_k(ref, data):
    position = data.draw(st.integers(0, len(ref) - 1))
    hyp = [*ref[:position], "zeta", *ref[position + 1 :]]
    assert score(["wer"], [" ".join(hyp)], [" ".join(ref)], normalize="none")["wer"] == pytest.approx(1 / len(ref))


def bwer(hyps, refs, lists, **options):
    samples = [{"biasing_words": words} for words in lists]
    return score(["wer", "b_wer", "u_wer"], hyps, refs, samples, **options)


def test_biased_and_unbiased_errors_are_separated():
    # the quick brown fox jumps / the quack brown jumps over, list [quick, fox]:
    # biased: quick->quack (S), fox (D): 2 / 2;  unbiased: over inserted: 1 / 3 (the, brown, jumps)
    out = bwer(["the quack brown jumps over"], ["the quick brown fox jumps"], [["quick", "fox"]])
    assert out == {"wer": pytest.approx(3 / 5), "b_wer": pytest.approx(1.0), "u_wer": pytest.approx(1 / 3)}


def test_an_inserted_biasing_word_is_a_biased_error():
    # utterance 2 inserts "fox", which is on its list: B-WER 1 / 1 (the fox of utterance 1), U-WER 0 / 4
    out = bwer(["see the fox", "a fox b"], ["see the fox", "a b"], [["fox"], ["fox"]])
    assert out == {"wer": pytest.approx(1 / 5), "b_wer": pytest.approx(1.0), "u_wer": 0.0}


def test_biasing_words_are_normalised_like_the_text():
    refs, lists = ["the colour red", "the colour red"], [["Colour"], ["Colour"]]
    out = bwer(["the color red", "the collar red"], refs, lists)  # colour -> color on both sides
    assert out == {"wer": pytest.approx(1 / 6), "b_wer": pytest.approx(1 / 2), "u_wer": 0.0}
    # without normalisation "Colour" matches no reference word: every word is unbiased
    out = bwer(["the color red", "the collar red"], refs, lists, normalize="none")
    assert out["b_wer"] == 0.0 and out["u_wer"] == pytest.approx(2 / 6)


def test_b_wer_reads_the_field_named_by_biasing_key():
    samples = [{"ground_truth": ["fox"]}]
    out = score(["b_wer", "u_wer"], ["a dog"], ["a fox"], samples, biasing_key="ground_truth")
    assert out == {"b_wer": 1.0, "u_wer": 0.0}


def test_b_wer_input_errors():
    with pytest.raises(ValueError, match="biasing_words"):
        score(["b_wer"], ["a"], ["a"])
    with pytest.raises(ValueError, match="has no 'biasing_words'"):
        score(["b_wer"], ["a"], ["a"], [{"key": "utt1"}])
    with pytest.raises(TypeError, match="list of strings"):
        score(["u_wer"], ["a"], ["a"], [{"biasing_words": "fox"}])
