"""A closed label set whose case and white-space variants map to the canonical label. Imports no torch."""

from __future__ import annotations

from collections.abc import Iterable

#: Trailing punctuation a decoded label may carry ("Rock." -> "rock").
_TRAILING = ".!?;:,"


def label_key(text: str) -> str:
    """The form labels are compared in: case-folded, white space collapsed, trailing punctuation dropped."""
    return " ".join(text.split()).rstrip(_TRAILING).rstrip().casefold()


class LabelSet:
    """The canonical labels, in order, and a look-up from any variant to its canonical label."""

    def __init__(self, labels: Iterable[str]):
        self.labels = list(labels)
        if not self.labels:
            raise ValueError("labels is empty; give at least one label")
        self._canonical: dict[str, str] = {}
        for label in self.labels:
            if not isinstance(label, str) or not label_key(label):
                raise ValueError(f"label {label!r} is empty; every label needs visible text")
            key = label_key(label)
            if key in self._canonical:
                raise ValueError(
                    f"labels {self._canonical[key]!r} and {label!r} are the same label once case and white space "
                    "are ignored; give each label once"
                )
            self._canonical[key] = label

    def canonical(self, text: str) -> str | None:
        """The canonical label ``text`` is a variant of, or None."""
        return self._canonical.get(label_key(text))

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and self.canonical(text) is not None

    def __len__(self) -> int:
        return len(self.labels)
