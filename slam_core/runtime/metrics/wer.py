"""Corpus-level WER and CER from jiwer's Levenshtein alignments, after text normalisation.

WER = (S + D + I) / (H + S + D) summed over the corpus, i.e. total edits over total reference
words (not a mean of per-utterance rates); CER the same over characters, spaces included
(jiwer's convention), after the same normalisation. An empty reference (also one the normaliser
empties, e.g. "(laughs)") adds its insertions to the numerator and nothing to the denominator;
a corpus with no reference words at all scores 0.0 when the hypotheses are empty too, else ``inf``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jiwer

from slam_core.runtime.metrics.normalize import get_normalizer
from slam_core.runtime.metrics.rates import EditCounts, total

Unit = Literal["word", "char"]

#: jiwer's ``alignment chunk type`` -> the ``EditCounts`` field it adds to.
_FIELD = {"equal": "hits", "substitute": "substitutions", "delete": "deletions", "insert": "insertions"}


def chunk_counts(chunk: jiwer.AlignmentChunk) -> EditCounts:
    """The edit counts of one jiwer alignment chunk."""
    if chunk.type == "insert":
        return EditCounts(insertions=chunk.hyp_end_idx - chunk.hyp_start_idx)
    return EditCounts(**{_FIELD[chunk.type]: chunk.ref_end_idx - chunk.ref_start_idx})


def align(
    hypotheses: Sequence[str], references: Sequence[str], *, unit: Unit = "word", normalize: str = "whisper"
) -> jiwer.WordOutput | jiwer.CharacterOutput:
    """jiwer's alignment of the normalised texts (``.references``, ``.hypotheses``, ``.alignments``)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    norm = get_normalizer(normalize)
    refs, hyps = [norm(r) for r in references], [norm(h) for h in hypotheses]
    if unit == "word":
        return jiwer.process_words(refs, hyps)
    if unit == "char":
        return jiwer.process_characters(refs, hyps)
    raise ValueError(f"unknown unit={unit!r}; choose 'word' or 'char'")


def utterance_errors(
    hypotheses: Sequence[str], references: Sequence[str], *, unit: Unit = "word", normalize: str = "whisper"
) -> list[EditCounts]:
    """Per-utterance hits, substitutions, deletions and insertions after normalisation."""
    output = align(hypotheses, references, unit=unit, normalize=normalize)
    return [total([chunk_counts(c) for c in chunks]) for chunks in output.alignments]


def error_rate(
    hypotheses: Sequence[str], references: Sequence[str], *, unit: Unit = "word", normalize: str = "whisper"
) -> float:
    """Corpus-level WER (``unit="word"``) or CER (``unit="char"``)."""
    return total(utterance_errors(hypotheses, references, unit=unit, normalize=normalize)).error_rate
