"""Audio through soundfile (wav, flac, ogg, ...): header probes for durations, segment reads, mono mix-down.

Files on disk (:func:`read_audio`) and encoded files held in memory, e.g. a shard's member
(:func:`read_stored_audio`), are read alike.

Resampling is the encoder's job: :func:`read_audio` returns the file's own rate in a
:class:`~slam_core.audio.RawAudio`, which the encoder's preprocessor hands to ``prepare_waveform``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path

import soundfile

from slam_core.audio import RawAudio
from slam_core.runtime.data.errors import AudioFileError

#: A segment may end this many seconds past the end of its file (rounding in cut manifests).
END_TOLERANCE_S = 0.025


def audio_seconds(
    path: str, offset: float = 0.0, duration: float | None = None, channels: Sequence[int] | None = None
) -> float:
    """Seconds of audio in ``path`` (or its segment), read from the header only."""
    return _seconds(path, lambda: _existing(path), offset, duration, channels)


def read_audio(
    path: str, offset: float = 0.0, duration: float | None = None, channels: Sequence[int] | None = None
) -> RawAudio:
    """The mono float32 waveform of ``path`` (only the segment ``offset``/``duration``, in seconds).

    ``channels`` (file columns) are mixed down by their mean; ``None`` mixes all of them.
    """
    return _read(path, lambda: _existing(path), offset, duration, channels)


def stored_audio_seconds(
    data: bytes, name: str, offset: float = 0.0, duration: float | None = None, channels: Sequence[int] | None = None
) -> float:
    """:func:`audio_seconds` of an encoded audio file held in memory (``name`` says where it came from)."""
    return _seconds(name, lambda: io.BytesIO(data), offset, duration, channels)


def read_stored_audio(
    data: bytes, name: str, offset: float = 0.0, duration: float | None = None, channels: Sequence[int] | None = None
) -> RawAudio:
    """:func:`read_audio` of an encoded audio file held in memory (a shard member, a dataset cell)."""
    return _read(name, lambda: io.BytesIO(data), offset, duration, channels)


Opener = Callable[[], "str | io.BytesIO"]


def _seconds(name: str, opener: Opener, offset: float, duration: float | None, channels) -> float:
    try:
        info = soundfile.info(opener())
    except (soundfile.SoundFileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"{name}: cannot read the audio header: {exc}") from None
    _check_channels(name, info.channels, channels)
    _, frames = _segment(name, info.frames, info.samplerate, offset, duration)
    return frames / info.samplerate


def _read(name: str, opener: Opener, offset: float, duration: float | None, channels) -> RawAudio:
    try:
        with soundfile.SoundFile(opener()) as stream:
            _check_channels(name, stream.channels, channels)
            start, frames = _segment(name, stream.frames, stream.samplerate, offset, duration)
            if start:
                stream.seek(start)
            data = stream.read(frames, dtype="float32", always_2d=True)
            rate = stream.samplerate
    except (soundfile.SoundFileError, RuntimeError, OSError) as exc:
        raise AudioFileError(f"{name}: cannot read the audio: {exc}") from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{name}: no audio samples could be read (truncated file?)")
    if channels is not None:
        data = data[:, list(channels)]
    return RawAudio(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0], rate)


def _existing(path: str) -> str:
    if not Path(path).is_file():
        raise AudioFileError(f"{path}: no such audio file; check the manifest's source (relative to the manifest)")
    return path


def _check_channels(path: str, available: int, channels: Sequence[int] | None) -> None:
    if channels is not None and any(not 0 <= c < available for c in channels):
        raise AudioFileError(f"{path}: channels {list(channels)} requested but the file has {available}")


def _segment(path: str, total: int, rate: int, offset: float, duration: float | None) -> tuple[int, int]:
    """``(first frame, frame count)`` of a segment; refuses an empty one or one past the end."""
    if total <= 0:
        raise AudioFileError(f"{path}: empty audio file (no samples)")
    if offset < 0 or (duration is not None and duration <= 0):
        raise AudioFileError(f"{path}: invalid segment offset={offset} s, duration={duration} s")
    start = round(offset * rate)
    end = total if duration is None else round((offset + duration) * rate)
    if start >= total or end > total + END_TOLERANCE_S * rate:
        stop = "the end" if duration is None else f"{offset + duration:g} s"
        raise AudioFileError(
            f"{path}: segment {offset:g} s to {stop} lies past the end of the file ({total / rate:g} s)"
        )
    frames = min(end, total) - start
    if frames <= 0:
        raise AudioFileError(f"{path}: the segment at {offset:g} s holds no samples")
    return start, frames
