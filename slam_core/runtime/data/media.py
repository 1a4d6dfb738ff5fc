"""What the data pipeline reads for an encoder's modality: audio, video, or both.

- ``audio``: the entry's ``source`` (or its segment) -> :class:`~slam_core.audio.RawAudio`.
- ``video``: the entry's ``source`` -> :class:`~slam_core.video.RawVideo` (``fps`` field for ``.npy`` arrays).
- ``audio-visual``: the video in ``source`` and the audio in the entry's ``audio`` field ->
  :class:`~slam_core.video.RawAudioVisual`.

An entry whose audio is ``stored`` inside a shard (lhotse Shar, a Hugging Face dataset) is audio only.
Its duration is the one its shard records, when it records one, so that indexing reads no audio.
"""

from __future__ import annotations

from slam_core.audio import RawAudio
from slam_core.components import Modality
from slam_core.runtime.data.audiofile import audio_seconds, read_audio, read_stored_audio, stored_audio_seconds
from slam_core.runtime.data.errors import AudioFileError
from slam_core.runtime.data.manifest import Entry
from slam_core.runtime.data.videofile import read_video, video_seconds
from slam_core.video import RawAudioVisual, RawVideo, combined_modality, for_modality

__all__ = ["combined_modality", "for_modality", "media_seconds", "read_raw"]


def read_raw(entry: Entry, modality: Modality) -> RawAudio | RawVideo | RawAudioVisual:
    """The raw input of ``entry`` for an encoder of ``modality``."""
    if entry.stored is not None:
        _audio_only(entry, modality)
        return read_stored_audio(entry.stored.read(), entry.path, entry.offset, entry.duration, entry.channels)
    if modality == "audio":
        return read_audio(entry.path, entry.offset, entry.duration, entry.channels)
    video = read_video(_video_path(entry), _fps(entry))
    if modality == "video":
        return video
    audio_path = _audio_path(entry)
    return RawAudioVisual(video, read_audio(audio_path))


def media_seconds(entry: Entry, modality: Modality) -> float:
    """The duration of ``entry`` in seconds, from file headers only (the video's, when there is video)."""
    if entry.stored is not None:
        _audio_only(entry, modality)
        if entry.duration is not None and entry.duration > 0:
            return entry.duration
        return stored_audio_seconds(entry.stored.read(), entry.path, entry.offset, None, entry.channels)
    if modality == "audio":
        return audio_seconds(entry.path, entry.offset, entry.duration, entry.channels)
    seconds = video_seconds(_video_path(entry), _fps(entry))
    if modality == "audio-visual":
        audio_seconds(_audio_path(entry))  # probe it, so that a missing audio file is found up front
    return seconds


def _audio_only(entry: Entry, modality: Modality) -> None:
    if modality != "audio":
        raise AudioFileError(
            f"{entry.path}: the sample's audio is stored in a shard; a {modality} encoder needs video files, "
            "so give it a SLAM-LLM jsonl manifest"
        )


def _video_path(entry: Entry) -> str:
    if entry.offset or entry.duration is not None or entry.channels is not None:
        raise AudioFileError(f"{entry.path}: segments (offset/duration/channels) are for audio; cut the video instead")
    return entry.path


def _audio_path(entry: Entry) -> str:
    audio = entry.fields.get("audio")
    if not isinstance(audio, str) or not audio:
        raise AudioFileError(
            f"{entry.path}: an audio-visual encoder needs the sample's audio in an 'audio' field "
            '(e.g. {"source": "clip.npy", "audio": "clip.wav", ...}), or use the encoder in video mode'
        )
    return audio


def _fps(entry: Entry) -> float | None:
    fps = entry.fields.get("fps")
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0:
        raise AudioFileError(f"{entry.path}: 'fps' must be a positive number, got {fps!r}")
    return float(fps)
