"""lhotse cut manifests as a manifest format: each MonoCut/MultiCut of one audio file becomes an :class:`Entry`.

``key`` is the cut id, ``source`` the recording's file (a relative path is resolved against the
manifest's directory), ``offset``/``duration`` the cut's segment, ``target`` its supervisions'
text; the cut's ``custom`` fields (and a single supervision's language/speaker) join the sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slam_core.runtime.data.errors import ManifestError
from slam_core.runtime.data.manifest import Entry, iter_json_lines


def read_cuts(path: Path) -> list[Entry]:
    """Entries of a lhotse CutSet manifest (jsonl or jsonl.gz), one per cut."""
    return [cut_entry(cut, path.parent, origin) for origin, cut in iter_cuts(path)]


def iter_cuts(path: Path) -> Iterator[tuple[str, Any]]:
    """``("file:line", cut)`` for each cut of a lhotse cut manifest (jsonl or jsonl.gz)."""
    deserialize_item = lhotse_import(path).serialization.deserialize_item
    for line, record in iter_json_lines(path):
        origin = f"{path}:{line}"
        try:
            cut = deserialize_item(record)
        except Exception as exc:  # lhotse raises assorted errors on malformed records
            raise ManifestError(f"{origin}: not a valid lhotse cut ({type(exc).__name__}: {exc})") from None
        yield origin, cut


def lhotse_import(path: Path, need: str = "reading this lhotse data") -> Any:
    """The ``lhotse`` module, or a :class:`ManifestError` naming ``path`` and the step that ``need`` s it
    when lhotse is not installed."""
    try:
        import lhotse
        import lhotse.serialization
        import lhotse.shar
    except ImportError:  # pragma: no cover - lhotse is installed in the test environment
        raise ManifestError(f"{path}: {need} needs lhotse (pip install 'slam-core[lhotse]')") from None
    return lhotse


def cut_entry(cut: Any, root: Path, origin: str) -> Entry:
    """The :class:`Entry` of one lhotse cut; refuses cuts that are not one segment of one audio file."""
    from lhotse import MonoCut, MultiCut

    if not isinstance(cut, (MonoCut, MultiCut)):
        raise ManifestError(
            f"{origin}: {type(cut).__name__} {getattr(cut, 'id', '')!r} is not supported; only MonoCut/MultiCut "
            "cuts of one recording (mix or pad the audio offline)"
        )
    recording = cut.recording
    if recording is None:
        raise ManifestError(f"{origin}: cut {cut.id!r} has no recording; attach recordings when building the cuts")
    sources = recording.sources
    if len(sources) != 1 or sources[0].type != "file":
        kinds = ", ".join(source.type for source in sources)
        raise ManifestError(f"{origin}: cut {cut.id!r}: the recording must be one audio file, got sources: {kinds}")
    if recording.transforms:
        raise ManifestError(
            f"{origin}: cut {cut.id!r}: recording transforms (speed/resample/...) are not supported; "
            "apply them offline or leave resampling to the encoder"
        )
    source = sources[0]
    audio = str(root / source.source)
    fields = cut_fields(cut, audio)
    return Entry(cut.id, audio, origin, fields, cut.start, cut.duration, _file_channels(cut, source.channels, origin))


def cut_fields(cut: Any, source: str) -> dict[str, Any]:
    """The sample dict of a cut: its ``custom`` fields, a single supervision's language/speaker, ``key``
    (the id), ``source``, ``target`` (its supervisions' text, in time order), ``offset`` and ``duration``."""
    fields: dict[str, Any] = dict(cut.custom or {})
    if len(cut.supervisions) == 1:
        supervision = cut.supervisions[0]
        described = {name: getattr(supervision, name) for name in ("language", "speaker")}
        fields.update({name: value for name, value in described.items() if value})
    text = " ".join(s.text for s in sorted(cut.supervisions, key=lambda s: s.start) if s.text)
    fields.update(key=cut.id, source=source, target=text, offset=cut.start, duration=cut.duration)
    return fields


def _file_channels(cut: Any, stored: list[int], origin: str) -> tuple[int, ...] | None:
    """Columns of the file holding the cut's channels (None: the file holds just those)."""
    wanted = cut.channel if isinstance(cut.channel, list) else [cut.channel]
    if sorted(wanted) == sorted(stored):
        return None
    missing = [channel for channel in wanted if channel not in stored]
    if missing:
        raise ManifestError(f"{origin}: cut {cut.id!r} uses channel(s) {missing} its recording's file does not hold")
    return tuple(stored.index(channel) for channel in wanted)
