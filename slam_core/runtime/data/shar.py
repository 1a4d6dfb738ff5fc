"""lhotse Shar folders as a source: ``cuts.NNNNNN.jsonl.gz`` shards of cuts beside ``recording.NNNNNN.tar``
shards holding each cut's audio (what ``CutSet.to_shar(..., fields={"recording": ...})`` and
``slam data shard`` write).

Reading a folder reads its cuts (ids, durations, text) and the tar headers (where each cut's audio
lies), never the audio itself: a sample's bytes are read from its tar member when the sample is
loaded, in whichever DataLoader worker loads it. Random access needs uncompressed tars (lhotse
writes ``.tar``); batching, rank sharding and resuming are the manifest path's own.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slam_core.runtime.data.errors import AudioFileError, ManifestError
from slam_core.runtime.data.lhotse_cuts import cut_fields, iter_cuts, lhotse_import
from slam_core.runtime.data.manifest import Entry

#: The Shar field holding the audio.
AUDIO_FIELD = "recording"
#: lhotse's member suffixes of a cut without that field.
PLACEHOLDERS = frozenset({".nodata", ".nometa"})
REWRITE_HINT = "write the folder again (slam data shard MANIFEST OUT)"


@dataclass(frozen=True, slots=True)
class TarMember:
    """An audio file stored uncompressed at ``offset`` (``size`` bytes) in the tar file ``tar``."""

    tar: str
    name: str
    offset: int
    size: int

    def read(self) -> bytes:
        try:
            with open(self.tar, "rb") as stream:
                stream.seek(self.offset)
                data = stream.read(self.size)
        except OSError as exc:
            raise AudioFileError(f"{self.tar}: cannot read member {self.name!r}: {exc.strerror or exc}") from None
        if len(data) != self.size:
            raise AudioFileError(f"{self.tar}: member {self.name!r} is truncated; {REWRITE_HINT}")
        return data


def is_shar_folder(folder: Path) -> bool:
    """Whether ``folder`` holds lhotse Shar cut shards (``cuts.*.jsonl`` or ``cuts.*.jsonl.gz``)."""
    return any(_field(path) == "cuts" and ".jsonl" in path.suffixes for path in folder.iterdir())


def read_shar(folder: Path) -> list[Entry]:
    """Entries of a Shar folder, shard by shard in order; each cut's audio is its ``recording`` tar member."""
    entries: list[Entry] = []
    for cuts, tar in shard_pairs(folder):
        members = tar_members(tar)
        for origin, cut in iter_cuts(cuts):
            entries.append(_entry(cut, origin, _member(members, cut.id, tar, origin)))
    if not entries:
        raise ManifestError(f"{folder}: the Shar folder's cut shards hold no cuts")
    return entries


def shard_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """``(cuts shard, recording tar)`` of each shard, paired as lhotse's own Shar reader pairs them."""
    lhotse = lhotse_import(folder)
    try:
        shards = lhotse.shar.LazySharIterator(in_dir=folder).shards
    except AssertionError as exc:  # lhotse checks the layout with assertions
        raise ManifestError(f"{folder}: not a complete Shar folder: {exc}; {REWRITE_HINT}") from None
    if not shards or AUDIO_FIELD not in shards[0]:
        fields = sorted({_field(path) for path in folder.iterdir()} - {"cuts"})
        raise ManifestError(
            f"{folder}: the Shar folder has no {AUDIO_FIELD}.*.tar shards (fields: {', '.join(fields) or 'none'}); "
            f"the audio must be in it: {REWRITE_HINT}, or CutSet.to_shar(..., fields={{'recording': 'flac'}})"
        )
    return [(Path(shard["cuts"]), Path(shard[AUDIO_FIELD])) for shard in shards]


def tar_members(tar: Path) -> dict[str, list[tarfile.TarInfo]]:
    """The data members of an uncompressed tar shard by key (``utt1`` for ``utt1.flac``; not the ``.json``
    metadata), from its headers: no member's data is read."""
    try:
        with tarfile.open(tar, mode="r:") as archive:
            members = archive.getmembers()
    except tarfile.ReadError as exc:
        raise ManifestError(
            f"{tar}: not an uncompressed tar file ({exc}); shards are read by random access, so they must be "
            f"plain .tar (not compressed, not truncated): {REWRITE_HINT}"
        ) from None
    except OSError as exc:
        raise ManifestError(f"{tar}: cannot read the shard: {exc.strerror or exc}") from None
    size = os.path.getsize(tar)
    truncated = [m.name for m in members if m.offset_data + m.size > size]
    if truncated:
        raise ManifestError(
            f"{tar}: the shard is truncated (member {truncated[0]!r} ends past its end); {REWRITE_HINT}"
        )
    by_key: dict[str, list[tarfile.TarInfo]] = {}
    for member in members:
        name = Path(member.name)
        if member.isfile() and name.suffix != ".json":
            by_key.setdefault(str(name.parent / name.stem), []).append(member)
    return by_key


def _member(members: dict[str, list[tarfile.TarInfo]], cut_id: str, tar: Path, origin: str) -> TarMember:
    """The audio member of cut ``cut_id``: ``{cut_id}.{format}`` beside its ``{cut_id}.json`` metadata."""
    found = members.get(cut_id, [])
    if any(Path(m.name).suffix in PLACEHOLDERS for m in found):
        raise ManifestError(
            f"{origin}: cut {cut_id!r} has no audio in {tar} (a placeholder): every cut of a Shar folder "
            "needs its recording; drop the cut or attach its audio before sharding"
        )
    if len(found) != 1:
        raise ManifestError(
            f"{origin}: cut {cut_id!r} has {'no' if not found else 'more than one'} audio member in {tar}; "
            f"the cuts and the recording shards do not match: {REWRITE_HINT}"
        )
    member = found[0]
    return TarMember(str(tar), member.name, member.offset_data, member.size)


def _entry(cut: Any, origin: str, member: TarMember) -> Entry:
    source = f"{member.tar}#{member.name}"
    # the member holds the cut's own audio (lhotse wrote cut.load_audio()), so it starts at 0
    return Entry(cut.id, member.tar, origin, cut_fields(cut, source), 0.0, cut.duration, None, member)


def _field(path: Path) -> str:
    """The Shar field a file belongs to: ``cuts`` for ``cuts.000000.jsonl.gz``."""
    return path.name.split(".")[0]
