"""Raw video and audio-visual samples as encoders receive them, the checks video preprocessors share,
and how modalities combine (what a model with several branches reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from slam_core.audio import RawAudio
from slam_core.errors import VideoError

if TYPE_CHECKING:
    from slam_core.components import Modality


class RawVideo(NamedTuple):
    """Grayscale frames ``[T, H, W]`` (uint8 0-255 or float) and the frame rate in frames per second."""

    frames: Any
    fps: float


class RawAudioVisual(NamedTuple):
    """A video and the audio recorded with it (either may be ``None`` when a mode does not use it)."""

    video: RawVideo | None
    audio: RawAudio | None


def prepare_frames(raw: RawVideo | Any, *, fps: float | None = None, name: str = "video") -> np.ndarray:
    """Validate ``raw`` and return its frames as float32 ``[T, H, W]`` on the 0-255 scale.

    ``raw`` is a :class:`RawVideo` or a bare frame array. Colour frames ``[T, H, W, 3]``
    (RGB) are converted to grayscale with the ITU-R BT.601 weights. With ``fps`` given, a
    video at another frame rate is refused (resampling video in time is not done silently).
    """
    frames, rate = (raw.frames, float(raw.fps)) if isinstance(raw, RawVideo) else (raw, fps)
    frames = np.asarray(frames)
    if frames.ndim == 4 and frames.shape[-1] == 3:
        frames = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    elif frames.ndim == 4 and frames.shape[-1] == 1:
        frames = frames[..., 0]
    if frames.ndim != 3:
        raise VideoError(f"{name}: expected grayscale frames [T, H, W], got shape {tuple(frames.shape)}")
    if frames.shape[0] == 0:
        raise VideoError(f"{name}: the video has no frames")
    frames = frames.astype(np.float32, copy=False)
    if not np.isfinite(frames).all():
        raise VideoError(f"{name}: the video contains NaN or infinite pixels")
    if fps is not None and rate is not None and abs(rate - fps) > 1e-3:
        raise VideoError(f"{name}: {rate:g} frames per second but the encoder expects {fps:g}; re-encode the video")
    return frames


MODALITIES = ("audio", "video", "audio-visual")


def combined_modality(modalities: set[str]) -> Modality:
    """The modality that covers all of ``modalities`` (e.g. an audio and a video branch: audio-visual)."""
    unknown = modalities - set(MODALITIES)
    if unknown or not modalities:
        raise ValueError(f"unknown modalities {sorted(unknown) or '(none)'}; expected some of {MODALITIES}")
    if modalities == {"audio"}:
        return "audio"
    if modalities == {"video"}:
        return "video"
    return "audio-visual"


def for_modality(raw: RawAudio | RawVideo | RawAudioVisual, modality: Modality) -> Any:
    """The part of an audio-visual raw input that an encoder of ``modality`` takes."""
    if not isinstance(raw, RawAudioVisual) or modality == "audio-visual":
        return raw
    return raw.audio if modality == "audio" else raw.video
