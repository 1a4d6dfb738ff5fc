"""``slam data shard``: a manifest's samples written as a lhotse Shar folder, by lhotse's own Shar writer.

Each sample becomes a cut of its audio segment: ``key`` its id, ``target`` its supervision's text, its
other fields (language, speaker, task fields) its ``custom`` fields, so that reading the folder back
gives the manifest's samples. The folder is written under a staging name beside ``out`` and
renamed when complete: a crash leaves no half-written corpus that would read as a whole one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slam_core.runtime.checkpoints.io import write_dir_atomically
from slam_core.runtime.data.audiofile import audio_seconds
from slam_core.runtime.data.errors import DataError, ManifestError
from slam_core.runtime.data.lhotse_cuts import lhotse_import
from slam_core.runtime.data.manifest import Entry, read_manifest

#: Fields a cut holds as its own attributes rather than in ``custom``.
CUT_ATTRIBUTES = frozenset({"key", "source", "target", "offset", "duration"})
AUDIO_FORMATS = ("flac", "wav")


def write_shar(manifest: str | Path, out: str | Path, *, shard_size: int = 1000, audio_format: str = "flac") -> int:
    """Write ``manifest``'s samples into the new Shar folder ``out``, ``shard_size`` cuts a shard; returns the
    number of shards. ``flac`` is lossless for 16-bit audio; ``wav`` keeps float audio as it is."""
    if shard_size < 1:
        raise DataError(f"--shard-size must be at least 1, got {shard_size}")
    if audio_format not in AUDIO_FORMATS:
        raise DataError(f"audio format {audio_format!r} is not one of {', '.join(AUDIO_FORMATS)}")
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: already exists and is not an empty folder; name a new folder to write the shards to")
    entries = read_manifest(manifest)
    if not entries:
        raise ManifestError(f"{Path(manifest).absolute()}: the manifest holds no samples")
    lhotse = lhotse_import(Path(manifest), need="writing it as Shar")
    cuts = lhotse.CutSet.from_cuts(entry_cut(entry, lhotse) for entry in entries)
    out.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {}

    def write(staging: Path) -> None:
        written.update(cuts.to_shar(staging, fields={"recording": audio_format}, shard_size=shard_size))

    write_dir_atomically(out, write, "the Shar shards")
    return len(written["cuts"])


def entry_cut(entry: Entry, lhotse: Any) -> Any:
    """The lhotse cut of one sample: its audio segment, its target as the supervision's text."""
    if entry.stored is not None:
        raise DataError(f"{entry.origin}: sample {entry.key!r} is already in shards; shard a manifest of audio files")
    target = entry.fields.get("target")
    if target is not None and not isinstance(target, str):
        raise DataError(f"{entry.origin}: sample {entry.key!r}: a target must be text to be sharded, got {target!r}")
    duration = audio_seconds(entry.path, entry.offset, entry.duration, entry.channels)  # an AudioError names the file
    recording = lhotse.Recording.from_file(entry.path, recording_id=entry.key)
    channels = list(entry.channels) if entry.channels is not None else list(recording.channel_ids)
    channel = channels[0] if len(channels) == 1 else channels
    supervision = lhotse.SupervisionSegment(
        id=entry.key, recording_id=entry.key, start=0.0, duration=duration, channel=channel, text=target
    )
    custom = {name: value for name, value in entry.fields.items() if name not in CUT_ATTRIBUTES}
    kind = lhotse.MonoCut if len(channels) == 1 else lhotse.MultiCut
    return kind(
        id=entry.key,
        start=entry.offset,
        duration=duration,
        channel=channel,
        recording=recording,
        supervisions=[supervision],
        custom=custom or None,
    )
