"""The sample index: each entry's duration from its audio header, and the bad-sample policy applied to it.

Missing, unreadable, empty and over-long samples are found here, before batching, so every
rank sees the same samples and plans the same batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from slam_core.audio import AudioError
from slam_core.components import Modality
from slam_core.runtime.data.errors import SKIP_HINT, BadSampleError
from slam_core.runtime.data.manifest import Entry
from slam_core.runtime.data.media import media_seconds

logger = logging.getLogger(__name__)

BadSamplePolicy = Literal["error", "skip"]
#: ``sample_problem(fields) -> reason | None``: the task head's check of a sample's fields.
SampleCheck = Callable[[dict], "str | None"]

#: Header reads run in threads (libsndfile releases the GIL; network file systems gain most).
PROBE_THREADS = 16
#: Bad samples listed in full in an error or a skip warning.
SHOWN = 10


@dataclass
class SampleIndex:
    """The usable entries of a manifest and their durations in seconds."""

    entries: list[Entry]
    durations: np.ndarray
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why, under bad_samples: skip


def bad_sample_message(entry: Entry, reason: str) -> str:
    """``manifest:line: sample 'key': audio-file: reason``."""
    detail = reason if entry.path in reason else f"{entry.path}: {reason}"
    return f"{entry.origin}: sample {entry.key!r}: {detail}"


def index_entries(
    entries: list[Entry],
    *,
    max_duration_s: float,
    bad_samples: BadSamplePolicy,
    modality: Modality = "audio",
    sample_problem: SampleCheck | None = None,
) -> SampleIndex:
    """Durations of ``entries`` (of the video, for video encoders); a bad one is an error naming every bad
    sample, or a logged skip. ``sample_problem`` (the task head's) makes a sample whose fields the head
    cannot use a bad one too."""
    with ThreadPoolExecutor(min(PROBE_THREADS, max(1, len(entries)))) as pool:
        results = list(pool.map(lambda entry: _probe(entry, max_duration_s, modality, sample_problem), entries))
    bad = {e.key: r for e, r in zip(entries, results, strict=True) if isinstance(r, str)}
    if len(bad) == 1 and bad_samples == "error":
        raise BadSampleError(f"{next(iter(bad.values()))}; {SKIP_HINT}")
    if bad and bad_samples == "error":
        raise BadSampleError(f"{len(bad)} bad samples; {SKIP_HINT}:\n" + _listing(list(bad.values())))
    if bad:
        listing = _listing(list(bad.values()))
        logger.warning("skipping %d of %d samples (data.bad_samples: skip):\n%s", len(bad), len(entries), listing)
    kept = [(e, r) for e, r in zip(entries, results, strict=True) if not isinstance(r, str)]
    return SampleIndex([e for e, _ in kept], np.array([r for _, r in kept], dtype=np.float64), bad)


def _probe(entry: Entry, max_duration_s: float, modality: Modality, sample_problem: SampleCheck | None) -> float | str:
    """The entry's seconds of media, or the message saying why it cannot be used."""
    problem = sample_problem(entry.fields) if sample_problem is not None else None
    if problem is not None:
        return f"{entry.origin}: {problem}"
    try:
        seconds = media_seconds(entry, modality)
    except AudioError as exc:
        return bad_sample_message(entry, str(exc))
    if seconds > max_duration_s:
        return bad_sample_message(
            entry,
            f"{seconds:.2f} s of {'audio' if modality == 'audio' else 'video'} exceeds "
            f"data.max_duration_s = {max_duration_s:g} s; "
            "cut it into shorter segments or raise the limit",
        )
    return seconds


def _listing(messages: list[str]) -> str:
    lines = [f"  - {m}" for m in messages[:SHOWN]]
    if len(messages) > SHOWN:
        lines.append(f"  ... and {len(messages) - SHOWN} more")
    return "\n".join(lines)
