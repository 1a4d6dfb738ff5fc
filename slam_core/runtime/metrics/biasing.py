"""Biased-word and unbiased WER (B-WER, U-WER) for contextual ASR.

Definition (Le et al., Interspeech 2021; facebookresearch/fbai-speech ``is21_deep_bias/score.py``):
each utterance comes with a list of biasing words. Over the word alignment of reference and
hypothesis, a reference word is *biased* if it is in the utterance's list; substitutions and
deletions count against the class of the reference word, insertions against the class of the
inserted hypothesis word. B-WER = (S_b + D_b + I_b) / N_b with N_b the number of biased reference
words; U-WER the same for all other words, so B-WER and U-WER errors add up to the WER errors.

score.py classes words by the list of rare words that occur in the reference (column 3 of
``test-{clean,other}.biasing_N.tsv``), not by the distractor-padded biasing list (column 4); the
two agree on reference words and differ only on inserted distractors. Pass the list you mean.

Differences from score.py: the alignment is jiwer's unit-cost Levenshtein alignment (score.py
weights insertions and deletions 3, substitutions 4, which can pick another alignment in rare
ties); both texts and each list entry go through the same normaliser (score.py compares the raw
upper-case LibriSpeech tokens), and an entry that normalises to several words marks each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from slam_core.runtime.metrics.normalize import get_normalizer
from slam_core.runtime.metrics.rates import EditCounts, total
from slam_core.runtime.metrics.wer import align


def biasing_lists(samples: Sequence[dict] | None, key: str, count: int) -> list[list[str]]:
    """``samples[i][key]`` for each utterance, checked to be lists of strings."""
    if samples is None:
        raise ValueError(f"b_wer/u_wer need samples with a {key!r} list of biasing words per utterance")
    if len(samples) != count:
        raise ValueError(f"{len(samples)} samples but {count} hypotheses")
    lists = []
    for i, sample in enumerate(samples):
        if key not in sample:
            raise ValueError(f"sample {i} ({sample.get('key', 'no key')!r}) has no {key!r} biasing list")
        words = sample[key]
        if isinstance(words, str) or not all(isinstance(w, str) for w in words):
            raise TypeError(f"sample {i}: {key!r} must be a list of strings, got {words!r}")
        lists.append(list(words))
    return lists


def biased_unbiased_counts(
    hypotheses: Sequence[str],
    references: Sequence[str],
    biasing: Sequence[Iterable[str]],
    *,
    normalize: str = "whisper",
) -> tuple[EditCounts, EditCounts]:
    """Corpus ``(biased, unbiased)`` edit counts; ``biasing[i]`` is utterance i's list of biasing words."""
    norm = get_normalizer(normalize)
    output = align(hypotheses, references, normalize=normalize)
    biased, unbiased = [], []
    for ref, hyp, chunks, words in zip(output.references, output.hypotheses, output.alignments, biasing, strict=True):
        in_list = {token for word in words for token in norm(word).split()}
        for chunk in chunks:
            if chunk.type == "insert":
                for word in hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]:
                    (biased if word in in_list else unbiased).append(EditCounts(insertions=1))
                continue
            field = {"equal": "hits", "substitute": "substitutions", "delete": "deletions"}[chunk.type]
            for word in ref[chunk.ref_start_idx : chunk.ref_end_idx]:
                (biased if word in in_list else unbiased).append(EditCounts(**{field: 1}))
    return total(biased), total(unbiased)
