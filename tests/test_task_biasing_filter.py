"""The first-pass biasing filter: properties (hypothesis) and worked examples.

Similarities are checked against an independent Indel-distance dynamic programme written here,
so the tests pin the score the filter documents (rapidfuzz ``fuzz.ratio`` / 100).
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from slam_core.runtime.tasks.biasing_filter import (
    BiasingFilter,
    builtin_common_words,
    char_ngrams,
    load_common_words,
    match_words,
)

COMMON = frozenset(["the", "and", "of", "a", "to", "in", "was", "he", "it", "his", "that", "with", "at", "said"])
rare_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=9).filter(lambda w: w not in COMMON)
common_word = st.sampled_from(sorted(COMMON))


def indel_similarity(a: str, b: str) -> float:
    """1 - (insertions + deletions) / (len a + len b), from the longest common subsequence."""
    if not a and not b:
        return 1.0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return 2 * previous[-1] / (len(a) + len(b))


def best_similarity(entry: str, hypothesis: str) -> float:
    """The best similarity of ``entry`` to any run of 1..3 hypothesis words (brute force)."""
    words = match_words(hypothesis)
    target = " ".join(match_words(entry))
    runs = [" ".join(words[i : i + k]) for k in (1, 2, 3) for i in range(len(words) - k + 1)]
    return max((indel_similarity(target, run) for run in runs), default=0.0)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(rare_word, min_size=1, max_size=12, unique=True),
    st.lists(st.one_of(rare_word, common_word), max_size=10),
    st.data(),
)
def test_words_of_the_list_in_the_hypothesis_are_always_kept(entries, filler, data):
    present = data.draw(st.lists(st.sampled_from(entries), min_size=1, max_size=3, unique=True))
    words = filler + present
    order = data.draw(st.permutations(words))
    kept = BiasingFilter(COMMON, threshold=data.draw(st.sampled_from([0.6, 0.7, 0.9, 1.0])))(entries, " ".join(order))
    assert set(present) <= set(kept)


@settings(max_examples=100, deadline=None)
@given(st.lists(rare_word, max_size=15), st.lists(common_word, max_size=12), st.integers(0, 5))
def test_a_hypothesis_of_common_words_keeps_nothing(entries, words, min_hotwords):
    kept = BiasingFilter(COMMON, threshold=0.0, min_hotwords=min_hotwords)(entries, " ".join(words))
    assert kept == []


@settings(max_examples=150, deadline=None)
@given(st.lists(rare_word, max_size=15), st.lists(st.one_of(rare_word, common_word), max_size=10), st.data())
def test_result_is_in_list_order_and_every_entry_is_similar_enough(entries, words, data):
    threshold = data.draw(st.sampled_from([0.5, 0.7, 0.8]))
    hypothesis = " ".join(words)
    kept = BiasingFilter(COMMON, threshold=threshold)(entries, hypothesis)
    unique = list(dict.fromkeys(entries))
    positions = [unique.index(entry) for entry in kept]
    assert positions == sorted(set(positions))  # a subsequence of the list, no repeats
    for entry in kept:
        assert best_similarity(entry, hypothesis) >= threshold - 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(rare_word, min_size=1, max_size=12, unique=True), st.lists(rare_word, max_size=8), st.randoms())
def test_the_kept_set_does_not_depend_on_the_list_order(entries, words, rnd):
    hypothesis = " ".join(words + entries[:2])
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    filt = BiasingFilter(COMMON)
    assert set(filt(entries, hypothesis)) == set(filt(shuffled, hypothesis))
    assert filt(shuffled, hypothesis) == [e for e in shuffled if e in set(filt(entries, hypothesis))]


@settings(max_examples=100, deadline=None)
@given(st.lists(rare_word, min_size=1, max_size=15, unique=True), st.lists(rare_word, min_size=1, max_size=6))
def test_min_and_max_hotwords_bound_the_count_by_best_score(entries, words):
    hypothesis = " ".join(words)
    loose = BiasingFilter(COMMON, threshold=0.0)(entries, hypothesis)  # every candidate
    capped = BiasingFilter(COMMON, threshold=0.0, max_hotwords=2)(entries, hypothesis)
    assert len(capped) == min(2, len(loose)) and set(capped) <= set(loose)
    scores = BiasingFilter(COMMON).scores(entries, hypothesis)
    dropped = set(loose) - set(capped)
    if capped and dropped:
        assert min(scores[e] for e in capped) >= max(scores[e] for e in dropped)
    exact = BiasingFilter(COMMON, threshold=1.0)(entries, hypothesis)
    topped = BiasingFilter(COMMON, threshold=1.0, min_hotwords=3)(entries, hypothesis)
    assert set(exact) <= set(topped) <= set(loose)
    assert len(topped) == max(len(exact), min(3, len(loose)))


def test_no_list_an_empty_list_or_an_empty_hypothesis_keep_nothing():
    filt = BiasingFilter(COMMON)
    assert filt(None, "gawain rode") == []
    assert filt([], "gawain rode") == []
    assert filt(["gawain"], "") == []
    assert filt(["", "  ", "'"], "gawain rode") == []


def test_fuzzy_matches_case_punctuation_and_split_words():
    entries = ["Gawain", "camelot", "stubblefield", "zwingli", "o'neil", "new york"]
    hypothesis = "Sir GAWAYNE met O'Neil, at Camelott near stubble field in New-York!"
    assert BiasingFilter(COMMON, threshold=0.7)(entries, hypothesis) == [
        "Gawain",
        "camelot",
        "stubblefield",
        "o'neil",
        "new york",
    ]
    assert BiasingFilter(COMMON, threshold=0.9)(entries, hypothesis) == [
        "camelot",
        "stubblefield",
        "o'neil",
        "new york",
    ]


@settings(max_examples=100, deadline=None)
@given(st.lists(rare_word, min_size=1, max_size=10), st.lists(st.one_of(rare_word, common_word), max_size=8))
def test_each_score_is_the_similarity_to_some_hypothesis_span(entries, words):
    hypothesis = " ".join(words)
    words = match_words(hypothesis)
    spans = {" ".join(words[i : i + k]) for k in (1, 2) for i in range(len(words) - k + 1)}
    for entry, score in BiasingFilter(COMMON).scores(entries, hypothesis).items():
        assert any(score == pytest.approx(indel_similarity(entry, span)) for span in spans)
        assert score <= best_similarity(entry, hypothesis) + 1e-9


def test_scores_are_indel_similarities():
    filt = BiasingFilter(COMMON)
    scores = filt.scores(["gawain", "camelot", "zwingli"], "the gawayne of camelott")
    assert scores["gawain"] == pytest.approx(indel_similarity("gawain", "gawayne"))  # 10 / 13
    assert scores["camelot"] == pytest.approx(indel_similarity("camelot", "camelott"))
    assert scores["gawain"] == pytest.approx(10 / 13)


def test_common_hypothesis_words_are_ignored_unless_they_are_words_of_the_list():
    filt = BiasingFilter(COMMON, threshold=0.7)
    assert filt(["saidy"], "he said it") == []  # "said" is common and not in the list: ignored
    assert filt(["said", "saidy"], "he said it") == ["said", "saidy"]  # "said" is listed: compared


def test_builtin_common_words_are_frequent_english_words():
    words = builtin_common_words()
    assert 4000 < len(words) < 5000
    assert {"the", "and", "of", "because", "don't", "i"} <= words
    assert not {"gawain", "camelot", "zwingli", "quetelet"} & words
    filt = BiasingFilter(words)
    assert filt(["thee", "gawain"], "and the knight said because gawain") == ["gawain"]


def test_common_words_file(tmp_path):
    path = tmp_path / "common.txt"
    path.write_text("# comment\nThe\nknight\n", encoding="utf-8")
    assert load_common_words(path) == {"the", "knight"}
    assert load_common_words(None) is builtin_common_words()
    with pytest.raises(FileNotFoundError, match=r"common-words file .*missing\.txt.* does not exist"):
        load_common_words(tmp_path / "missing.txt")


@given(st.text(max_size=12), st.integers(1, 4))
def test_char_ngrams_cover_the_padded_text(text, n):
    assume("^" not in text and "$" not in text)
    grams = char_ngrams(text, n)
    padded = f"^{text}$"
    assert all(gram in padded for gram in grams)
    assert "".join(sorted(grams)) and (len(padded) < n or all(len(g) == n for g in grams))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        BiasingFilter(threshold=1.5)
    with pytest.raises(ValueError, match="ngram"):
        BiasingFilter(ngram=0)
    with pytest.raises(ValueError, match="max_hotwords"):
        BiasingFilter(max_hotwords=0)
