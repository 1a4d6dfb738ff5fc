"""Pseudo-hotwords for training contextual ASR (as SLAM-LLM's contextual_asr recipe builds them).

Each target of a batch gives, with probability ``keep_probability``, one random n-gram of 1 to
``max_ngram`` consecutive words; the n-grams of the whole batch form the hotword pool, so that
for each sample the pool holds its own n-gram (if kept) and the other targets' n-grams act as
distractors. Randomness comes only from Python's ``random`` module. Imports no torch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def random_ngram(words: Sequence[str], max_ngram: int) -> str:
    """``n`` consecutive words of ``words`` (non-empty), ``n`` uniform in ``1..max_ngram`` capped at ``len(words)``."""
    n = min(random.randint(1, max_ngram), len(words))
    start = random.randint(0, len(words) - n)
    return " ".join(words[start : start + n])


def batch_ngrams(targets: Sequence[str], *, keep_probability: float, max_ngram: int) -> list[str | None]:
    """Per target, its pseudo-hotword n-gram, or None when it was not kept (or has no words)."""
    grams: list[str | None] = []
    for target in targets:
        words = target.split()
        kept = random.random() < keep_probability
        grams.append(random_ngram(words, max_ngram) if kept and words else None)
    return grams


def unique(words: Sequence[str]) -> list[str]:
    """``words`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(words))


def sample_hotwords(pool: Sequence[str], own_list: Sequence[str], distractors: int) -> list[str]:
    """One sample's shuffled hotwords: the batch's ``pool`` plus up to ``distractors`` words of ``own_list``."""
    extra = random.sample(list(own_list), min(distractors, len(own_list))) if distractors and own_list else []
    words = unique([*pool, *extra])
    random.shuffle(words)
    return words
