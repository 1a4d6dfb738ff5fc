"""BEATs input features: 128-bin Kaldi fbank at 16 kHz, and the frame/token arithmetic."""

from __future__ import annotations

import torch

from slam_core.audio import AudioError, prepare_waveform

SAMPLE_RATE = 16000
NUM_MEL_BINS = 128
#: Kaldi window and hop at 16 kHz (25 ms and 10 ms).
WINDOW_SAMPLES = 400
HOP_SAMPLES = 160


def fbank_frames(num_samples: int) -> int:
    """Kaldi fbank frames of ``num_samples`` samples (snip_edges: the tail that fills no window is dropped)."""
    return 0 if num_samples < WINDOW_SAMPLES else 1 + (num_samples - WINDOW_SAMPLES) // HOP_SAMPLES


def min_samples(patch_size: int) -> int:
    """Fewest samples giving ``patch_size`` fbank frames, i.e. one row of patches."""
    return WINDOW_SAMPLES + (patch_size - 1) * HOP_SAMPLES


def tokens_per_step(patch_size: int) -> int:
    """Patch tokens per time step: the 128 mel bins cut into ``patch_size``-wide bands."""
    return NUM_MEL_BINS // patch_size


def output_lengths(frames: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Tokens for ``frames`` fbank frames: whole time steps of ``patch_size`` frames, each giving one token per band."""
    return torch.div(frames, patch_size, rounding_mode="floor") * tokens_per_step(patch_size)


class BeatsFbank:
    """Raw audio → normalised fbank ``[frames, 128]`` as BEATs computes it; picklable, holds no weights.

    The waveform (in [-1, 1]) is scaled by 2^15 and passed to ``torchaudio.compliance.kaldi.fbank``
    (25 ms Povey window, 10 ms hop, no dither); the result is normalised as ``(x - mean) / (2 * std)``.
    """

    def __init__(
        self,
        patch_size: int = 16,
        *,
        resample: bool = False,
        max_seconds: float | None = None,
        mean: float = 15.41663,
        std: float = 6.55582,
    ):
        self.patch_size, self.resample, self.max_seconds = patch_size, resample, max_seconds
        self.mean, self.std = mean, std

    def __call__(self, raw) -> torch.Tensor:
        from torchaudio.compliance import kaldi

        waveform = prepare_waveform(raw, SAMPLE_RATE, resample=self.resample, max_seconds=self.max_seconds)
        needed = min_samples(self.patch_size)
        if waveform.numel() < needed:
            raise AudioError(
                f"audio: {waveform.numel()} samples ({waveform.numel() / SAMPLE_RATE:.3f} s) is shorter than one "
                f"BEATs patch, which needs {self.patch_size} fbank frames = {needed} samples "
                f"({needed / SAMPLE_RATE:.3f} s) at {SAMPLE_RATE} Hz; pad the clip or drop it"
            )
        fbank = kaldi.fbank(
            waveform.unsqueeze(0) * 2**15,
            num_mel_bins=NUM_MEL_BINS,
            sample_frequency=SAMPLE_RATE,
            frame_length=25,
            frame_shift=10,
        )
        return (fbank - self.mean) / (2 * self.std)
