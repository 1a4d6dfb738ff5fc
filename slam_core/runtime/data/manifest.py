"""Manifests: SLAM-LLM jsonl (``key``, ``source``, ``target`` and task fields), lhotse cut manifests, and
folders of shards: lhotse Shar and Hugging Face datasets (see :mod:`slam_core.runtime.data.folders`).

:func:`read_manifest` picks the reader from the file's content, or a folder's layout. Each gives
:class:`Entry` records whose ``fields`` are the sample dict handed to the task head, with ``source``
resolved against the manifest's directory.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from slam_core.runtime.data.errors import ManifestError

#: ``type`` values of lhotse cut records.
LHOTSE_CUT_TYPES = frozenset({"MonoCut", "MultiCut", "MixedCut", "PaddingCut", "Cut"})


class StoredAudio(Protocol):
    """Where an encoded audio file is held inside a larger file (a shard's member, a dataset's cell).

    Small and picklable: DataLoader workers receive it with the entry and read the bytes themselves.
    """

    def read(self) -> bytes:
        """The encoded audio file (wav, flac, ...)."""
        ...


@dataclass(frozen=True, slots=True)
class Entry:
    """One sample of a manifest: where its audio is and the dict the task head sees."""

    key: str
    path: str  # the audio file, resolved against the manifest's directory
    origin: str  # "manifest:line", for messages
    fields: dict[str, Any]  # key, source (= path), target, task fields
    offset: float = 0.0  # segment start in seconds
    duration: float | None = None  # segment length in seconds; None: to the end of the file
    channels: tuple[int, ...] | None = None  # channels to mix down; None: all
    stored: StoredAudio | None = None  # the audio is inside ``path`` (a shard), not ``path`` itself


def read_manifest(path: str | Path) -> list[Entry]:
    """Read a SLAM-LLM jsonl or a lhotse cut manifest (``.jsonl`` or ``.jsonl.gz``), chosen by content, or
    a folder of shards (lhotse Shar, a Hugging Face dataset), chosen by its layout."""
    path = Path(path).absolute()
    if path.is_dir():
        from slam_core.runtime.data.folders import read_folder

        entries = read_folder(path)
        check_unique_keys(entries)
        return entries
    with contextlib.closing(iter_json_lines(path)) as records:
        first = next(records, None)
    if first is not None and is_lhotse_cut(first[1]):
        from slam_core.runtime.data.lhotse_cuts import read_cuts

        entries = read_cuts(path)
    else:
        entries = read_slam_jsonl(path)
    check_unique_keys(entries)
    return entries


def is_lhotse_cut(record: dict[str, Any]) -> bool:
    """Whether a manifest record is a serialised lhotse cut."""
    return record.get("type") in LHOTSE_CUT_TYPES and "id" in record


def read_slam_jsonl(path: Path) -> list[Entry]:
    """Entries of a SLAM-LLM jsonl manifest: one JSON object per line with ``key`` and ``source``."""
    return [_slam_entry(record, path, line) for line, record in iter_json_lines(path)]


def _slam_entry(record: dict[str, Any], path: Path, line: int) -> Entry:
    origin = f"{path}:{line}"
    missing = [name for name in ("key", "source") if name not in record]
    if missing:
        raise ManifestError(
            f"{origin}: missing {' and '.join(repr(m) for m in missing)}; every line needs "
            '"key" (a unique id) and "source" (the audio file), '
            'e.g. {"key": "utt1", "source": "a.wav", "target": "..."}'
        )
    key, source = record["key"], record["source"]
    if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
        raise ManifestError(f"{origin}: 'key' must be a non-empty string, got {key!r}")
    if not isinstance(source, str) or not source:
        raise ManifestError(f"{origin}: 'source' must be a non-empty path string, got {source!r}")
    media = str(path.parent / source)
    fields = {**record, "key": str(key), "source": media}
    if "audio" in record:  # an audio-visual sample's audio beside the video in source
        if not isinstance(record["audio"], str) or not record["audio"]:
            raise ManifestError(f"{origin}: 'audio' must be a non-empty path string, got {record['audio']!r}")
        fields["audio"] = str(path.parent / record["audio"])
    return Entry(str(key), media, origin, fields)


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of a (possibly gzipped) jsonl file."""
    line = 0
    try:
        with _open_text(path) as stream:
            for line, text in enumerate(stream, 1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ManifestError(
                        f"{path}:{line}: not valid JSON ({exc.msg} at column {exc.colno}); "
                        "each line must hold one JSON object"
                    ) from None
                if not isinstance(record, dict):
                    raise ManifestError(
                        f"{path}:{line}: expected a JSON object, got {type(record).__name__} {text.strip()[:60]!r}"
                    )
                yield line, record
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, EOFError) as exc:
        raise ManifestError(f"{path}:{line + 1}: the manifest is not UTF-8 jsonl (gzipped or plain): {exc}") from None


def _open_text(path: Path):
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")


def check_unique_keys(entries: list[Entry]) -> None:
    """Refuse a manifest whose keys repeat, naming both lines."""
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.key in seen:
            raise ManifestError(
                f"{entry.origin}: duplicate key {entry.key!r} (first at {seen[entry.key]}); keys must be unique"
            )
        seen[entry.key] = entry.origin
