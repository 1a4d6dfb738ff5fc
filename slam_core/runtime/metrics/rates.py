"""Edit counts of aligned word (or character) sequences, and the error rate they give."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class EditCounts:
    """Hits, substitutions, deletions and insertions of one alignment (or a sum of them)."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def reference_length(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def error_rate(self) -> float:
        """``errors / reference_length``; with no reference words: 0.0 if no errors, else ``inf``."""
        if self.reference_length:
            return self.errors / self.reference_length
        return math.inf if self.errors else 0.0

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(
            self.hits + other.hits,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


def total(counts: list[EditCounts]) -> EditCounts:
    """The sum of ``counts`` (corpus-level: errors and reference lengths are summed, then divided)."""
    return sum(counts, EditCounts())
