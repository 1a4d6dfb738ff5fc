"""The waveform preprocessor MERT's data workers run: shared checks, resampling, optional normalisation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from slam_core.audio import AudioError, prepare_waveform

#: Wav2Vec2FeatureExtractor's variance floor in ``zero_mean_unit_var_norm``.
NORM_EPS = 1e-7


def zero_mean_unit_var(waveform: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / sqrt(var + 1e-7)`` over the clip (population variance), as the HF feature extractor."""
    centred = waveform - waveform.mean()
    return centred / torch.sqrt(centred.square().mean() + NORM_EPS)


@dataclass(frozen=True)
class MERTPreprocessor:
    """Raw audio → float32 waveform ``[samples]`` at ``sample_rate``; picklable, holds no weights.

    Refuses (with :class:`~slam_core.audio.AudioError`) what :func:`prepare_waveform` refuses, and
    clips shorter than the conv stack's receptive field ``min_samples`` (they would give no frame).
    """

    sample_rate: int
    min_samples: int
    resample: bool = True
    max_seconds: float | None = None
    normalize: bool = False
    name: str = "mert input"

    def __call__(self, raw: Any) -> torch.Tensor:
        waveform = prepare_waveform(
            raw, self.sample_rate, resample=self.resample, max_seconds=self.max_seconds, name=self.name
        )
        if waveform.numel() < self.min_samples:
            shortest_ms = 1000 * self.min_samples / self.sample_rate
            raise AudioError(
                f"{self.name}: {waveform.numel()} samples at {self.sample_rate} Hz is shorter than MERT's "
                f"receptive field of {self.min_samples} samples ({shortest_ms:.1f} ms), so it gives no frame; "
                "drop or pad clips that short"
            )
        return zero_mean_unit_var(waveform) if self.normalize else waveform
