"""Readers for the LibriSpeech biasing lists of Le et al. (2021), facebookresearch/fbai-speech ``is21_deep_bias``.

Files of that release:

- ``ref/test-{clean,other}.biasing_{N}.tsv`` for N = 100, 500, 1000, 2000: one utterance per
  line, four tab-separated columns: utterance id, reference text, a JSON list of the rare words
  that occur in the reference, and a JSON list of biasing words (those rare words plus N
  distractors drawn from the rare-word vocabulary): :func:`read_biasing_tsv`.
- ``words/all_rare_words.txt``, ``words/common_words_5k.txt``: one word per line;
  ``words/all_words.count.txt``: word, tab, count: :func:`read_word_list` reads all three.

:func:`attach_biasing_lists` adds a list to each manifest sample under ``biasing_words``, the
field the ``contextual-asr`` task and the B-WER/U-WER metrics read. Imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from slam_core.errors import DataError

#: The manifest field holding an utterance's biasing list.
BIASING_FIELD = "biasing_words"


class BiasingListError(DataError):
    """A biasing-list or word-list file that does not have the expected layout; names the file and line."""


@dataclass(frozen=True)
class BiasingEntry:
    """One line of a ``biasing_N.tsv`` file."""

    key: str  #: the utterance id (LibriSpeech ``speaker-chapter-utterance``)
    text: str  #: the reference transcript
    rare_words: tuple[str, ...]  #: the rare words occurring in ``text`` (column 3)
    biasing_words: tuple[str, ...]  #: the biasing list: ``rare_words`` plus distractors (column 4)


def _word_list(cell: str, where: str, column: str) -> tuple[str, ...]:
    try:
        words = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise BiasingListError(f"{where}: the {column} column is not a JSON list ({exc.msg}): {cell[:60]!r}") from None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise BiasingListError(f"{where}: the {column} column must be a JSON list of strings, got {cell[:60]!r}")
    return tuple(words)


def read_biasing_tsv(path: str | Path) -> dict[str, BiasingEntry]:
    """The entries of a ``test-*.biasing_N.tsv`` file by utterance id, in file order.

    Raises :class:`BiasingListError` on a line without four tab-separated columns, a column that
    is not a JSON list of strings, or an utterance id given twice.
    """
    path = Path(path)
    entries: dict[str, BiasingEntry] = {}
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            where = f"{path}:{number}"
            columns = line.split("\t")
            if len(columns) != 4:
                raise BiasingListError(
                    f"{where}: expected 4 tab-separated columns (utterance id, reference text, rare words, "
                    f"biasing words), found {len(columns)}"
                )
            key, text, rare, biasing = columns
            if not key:
                raise BiasingListError(f"{where}: the utterance id is empty")
            if key in entries:
                raise BiasingListError(f"{where}: utterance {key!r} appears twice")
            entries[key] = BiasingEntry(
                key, text, _word_list(rare, where, "rare-words"), _word_list(biasing, where, "biasing-words")
            )
    return entries


def read_word_list(path: str | Path) -> list[str]:
    """The words of a word-list file, in order: the first tab-separated column of each line.

    Reads ``all_rare_words.txt`` and ``common_words_5k.txt`` (one word per line) and
    ``all_words.count.txt`` (word, tab, count); blank lines and lines starting with ``#`` are skipped.
    """
    words = []
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            word = line.split("\t", 1)[0].strip()
            if word and not word.startswith("#"):
                words.append(word)
    return words


def attach_biasing_lists(
    samples: Iterable[Mapping[str, Any]],
    entries: Mapping[str, BiasingEntry],
    *,
    column: Literal["biasing_words", "rare_words"] = "biasing_words",
    missing: Literal["error", "empty"] = "error",
) -> list[dict[str, Any]]:
    """Copies of manifest ``samples`` with ``biasing_words`` set from the entry with the same ``key``.

    ``column`` picks the full biasing list (with distractors, what decoding filters) or only the
    rare words of the reference. A sample without an entry is an error, or gets an empty list
    with ``missing="empty"``.
    """
    attached = []
    for sample in samples:
        key = str(sample.get("key", ""))
        entry = entries.get(key)
        if entry is None and missing == "error":
            raise BiasingListError(
                f"sample {key!r} has no biasing list ({len(entries)} entries); check that the manifest keys are "
                "LibriSpeech utterance ids, or pass missing='empty'"
            )
        words = list(getattr(entry, column)) if entry is not None else []
        attached.append({**sample, BIASING_FIELD: words})
    return attached
