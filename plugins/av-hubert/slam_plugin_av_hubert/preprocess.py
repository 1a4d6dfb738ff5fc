"""The preprocessors AV-HuBERT's data workers run (picklable, no weights): lip crops, filterbanks, both aligned.

Video follows av_hubert's image transform: pixels / 255, a centre crop (evaluation) or a random crop
and a horizontal flip with probability 0.5 (training), then ``(x - 0.421) / 0.165``; computed in float64
as upstream's numpy code, returned as float32. Randomness comes from Python's ``random`` module (seeded
per DataLoader worker by torch).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from slam_core.audio import AudioError, prepare_waveform
from slam_core.video import RawAudioVisual, VideoError, prepare_frames
from slam_plugin_av_hubert.fbank import SAMPLE_RATE, align_to, audio_features, normalize_frames
from slam_plugin_av_hubert.presets import CROP_SIZE, IMAGE_MEAN, IMAGE_STD, VIDEO_FPS

#: Probability of a horizontal flip in training, as av_hubert's ``HorizontalFlip(0.5)``.
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class LipCrops:
    """Raw video (:class:`~slam_core.video.RawVideo` or frames ``[T, H, W]``) -> normalised crops ``[T, crop, crop]``.

    ``train``: a random crop position and a horizontal flip (p = 0.5) per clip; else the centre crop.
    Raises :class:`~slam_core.video.VideoError` for no frames, frames smaller than the crop or
    another frame rate than 25 fps.
    """

    crop_size: int = CROP_SIZE
    mean: float = IMAGE_MEAN
    std: float = IMAGE_STD
    train: bool = False
    fps: float = VIDEO_FPS
    name: str = "video"

    def __call__(self, raw: Any) -> torch.Tensor:
        frames = prepare_frames(raw, fps=self.fps, name=self.name)
        _, height, width = frames.shape
        size = self.crop_size
        if height < size or width < size:
            raise VideoError(
                f"{self.name}: frames of {height}x{width} pixels are smaller than the {size}x{size} lip crop "
                "AV-HuBERT takes; use mouth crops as av_hubert's preparation makes them (96x96, 25 fps)"
            )
        if self.train:
            top, left = random.randint(0, height - size), random.randint(0, width - size)
        else:
            top, left = (height - size) // 2, (width - size) // 2
        crop = frames[:, top : top + size, left : left + size].astype(np.float64)
        if self.train and random.random() < FLIP_PROBABILITY:
            crop = crop[:, :, ::-1]
        return torch.from_numpy(((crop / 255.0 - self.mean) / self.std).astype(np.float32))


@dataclass(frozen=True)
class Filterbanks:
    """Raw audio (:class:`~slam_core.audio.RawAudio` or a 16 kHz waveform) -> ``[T, 104]`` at 25 Hz."""

    normalize: bool = True
    resample: bool = True
    name: str = "audio"

    def unnormalized(self, raw: Any) -> torch.Tensor:
        """Stacked log filterbanks before the per-frame normalisation."""
        return audio_features(prepare_waveform(raw, SAMPLE_RATE, resample=self.resample, name=self.name))

    def finish(self, features: torch.Tensor) -> torch.Tensor:
        """The per-frame normalisation, when enabled."""
        return normalize_frames(features) if self.normalize else features

    def __call__(self, raw: Any) -> torch.Tensor:
        return self.finish(self.unnormalized(raw))


@dataclass(frozen=True)
class AudioVisualFeatures:
    """:class:`~slam_core.video.RawAudioVisual` -> ``{"video": [T, crop, crop], "audio": [T, 104]}``.

    The audio frames are trimmed or zero-padded at the end to the video's ``T``, as av_hubert's dataset does.
    """

    video: LipCrops
    audio: Filterbanks

    def __call__(self, raw: Any) -> dict[str, torch.Tensor]:
        if not isinstance(raw, RawAudioVisual):
            raise VideoError(
                f"audio-visual mode takes RawAudioVisual(video, audio), got {type(raw).__name__}; "
                "use modality: video or audio for a single stream"
            )
        if raw.video is None:
            raise VideoError("audio-visual sample without video; use modality: audio for audio alone")
        if raw.audio is None:
            raise AudioError("audio-visual sample without audio (no audio track?); use modality: video for lip reading")
        video = self.video(raw.video)
        audio = align_to(self.audio.unnormalized(raw.audio), video.shape[0])
        return {"video": video, "audio": self.audio.finish(audio)}
