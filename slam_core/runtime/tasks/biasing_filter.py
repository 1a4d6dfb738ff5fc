"""Pick the entries of a biasing list that a first-pass hypothesis seems to contain.

After Yang et al., "CTC-assisted LLM-based contextual ASR" (SLT 2024; SLAM-LLM's contextual_asr
example): the hypothesis's common words are ignored (unless they are words of the biasing list),
a character n-gram index over the biasing list finds candidates sharing an n-gram with the rest
of the hypothesis, and each candidate is scored against the hypothesis spans of its word count
(and one word more, for a rare word split in two) with rapidfuzz's ``fuzz.ratio`` / 100, i.e.
1 - Indel distance / (sum of lengths), the score SLAM-LLM takes from python-Levenshtein's
``ratio``. Entries scoring at least ``threshold`` are kept, topped up to ``min_hotwords`` with
the best others and capped at ``max_hotwords``; the result keeps the biasing list's order.
Words are compared case-folded, without punctuation. Imports no torch.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path

from rapidfuzz import fuzz

from slam_core.runtime.tasks.biasing_lists import read_word_list

_WORD = re.compile(r"[\w']+")


def match_words(text: str) -> list[str]:
    """The words of ``text`` as the filter compares them: case-folded, punctuation dropped, inner apostrophes kept."""
    return [w for w in (token.strip("'") for token in _WORD.findall(text.casefold())) if w]


@cache
def builtin_common_words() -> frozenset[str]:
    """The built-in common-words list (SCOWL size 10, 4,433 words; see the header of data/common_words.txt)."""
    text = resources.files("slam_core.runtime.tasks").joinpath("data", "common_words.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def load_common_words(path: str | Path | None) -> frozenset[str]:
    """The words of a common-words file (one per line, as ``read_word_list`` reads), or the built-in list."""
    if path is None:
        return builtin_common_words()
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"common-words file {str(path)!r} does not exist; give a file with one word per line, or leave "
            "filter.common_words out for the built-in list"
        )
    return frozenset(w for word in read_word_list(path) for w in match_words(word))


def char_ngrams(text: str, n: int) -> set[str]:
    """The character n-grams of ``text`` padded with ``^`` and ``$`` (a short text still has some)."""
    padded = f"^{text}$"
    return {padded[i : i + n] for i in range(max(len(padded) - n + 1, 1))}


class BiasingFilter:
    """Filters a biasing list against a hypothesis; see the module docstring for the method."""

    def __init__(
        self,
        common_words: Iterable[str] = (),
        *,
        ngram: int = 2,
        threshold: float = 0.7,
        min_hotwords: int = 0,
        max_hotwords: int | None = None,
    ):
        if ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {ngram}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if max_hotwords is not None and max_hotwords < 1:
            raise ValueError(f"max_hotwords must be at least 1 or None, got {max_hotwords}")
        self.common_words = frozenset(w for word in common_words for w in match_words(word))
        self.ngram, self.threshold = ngram, threshold
        self.min_hotwords, self.max_hotwords = min_hotwords, max_hotwords

    def spans(self, hypothesis: str, lengths: Iterable[int], listed: Container[str] = ()) -> list[str]:
        """Runs of ``k`` consecutive hypothesis words, for each ``k``, with at least one word that is not
        common or is ``listed`` (a word of the biasing list)."""
        words = match_words(hypothesis)
        uncommon = [w not in self.common_words or w in listed for w in words]
        found: dict[str, None] = {}
        for k in sorted(set(lengths)):
            for start in range(len(words) - k + 1):
                if any(uncommon[start : start + k]):
                    found.setdefault(" ".join(words[start : start + k]))
        return list(found)

    def scores(self, biasing_words: Sequence[str], hypothesis: str) -> dict[str, float]:
        """Each candidate entry (as written in the list) -> its best similarity to a hypothesis span."""
        entries: dict[str, str] = {}  # entry as written -> its normalised form
        for entry in biasing_words:
            normalised = " ".join(match_words(entry))
            if normalised and entry not in entries:
                entries[entry] = normalised
        index: dict[str, set[str]] = {}
        for entry, normalised in entries.items():
            for gram in char_ngrams(normalised, self.ngram):
                index.setdefault(gram, set()).add(entry)
        word_counts = {normalised.count(" ") + 1 for normalised in entries.values()}
        best: dict[str, float] = {}
        listed = {word for normalised in entries.values() for word in normalised.split()}
        for span in self.spans(hypothesis, word_counts | {k + 1 for k in word_counts}, listed):
            span_words = span.count(" ") + 1
            candidates = set().union(*(index.get(gram, ()) for gram in char_ngrams(span, self.ngram)))
            for entry in candidates:
                if span_words - (entries[entry].count(" ") + 1) not in (0, 1):
                    continue
                score = fuzz.ratio(entries[entry], span) / 100.0
                if score > best.get(entry, -1.0):
                    best[entry] = score
        return best

    def __call__(self, biasing_words: Sequence[str] | None, hypothesis: str) -> list[str]:
        """The entries of ``biasing_words`` to put in the prompt, in list order (``[]`` for no list)."""
        if not biasing_words:
            return []
        scores = self.scores(biasing_words, hypothesis)
        order = {entry: i for i, entry in reversed(list(enumerate(biasing_words)))}
        ranked = sorted(scores, key=lambda entry: (-scores[entry], order[entry]))
        kept = [entry for entry in ranked if scores[entry] >= self.threshold]
        if len(kept) < self.min_hotwords:
            kept = ranked[: max(self.min_hotwords, len(kept))]
        if self.max_hotwords is not None:
            kept = kept[: self.max_hotwords]
        return sorted(kept, key=order.__getitem__)
