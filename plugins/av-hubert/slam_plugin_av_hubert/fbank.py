"""AV-HuBERT's audio features: python_speech_features' ``logfbank`` (as av_hubert's dataset calls it), 4-frame
stacking to 25 Hz, alignment to the video and per-frame normalisation.

``logfbank(wav, samplerate=16000)`` with its defaults: pre-emphasis 0.97; 400-sample frames every 160
samples with a rectangular window, the last frame zero-padded (``1 + ceil((n - 400) / 160)`` frames,
one frame for ``n <= 400``); power spectrum ``|rfft(frame, 512)|^2 / 512``; 26 triangular mel filters
from 0 Hz to 8 kHz; ``log`` (a zero energy becomes machine epsilon first). Upstream feeds the int16
samples read by ``scipy.io.wavfile``, so a waveform in [-1, 1] is scaled by 2^15 here. Computed in
float64 as numpy does, returned as float32.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch.nn import functional as F

SAMPLE_RATE = 16000
WINDOW, HOP, NFFT = 400, 160, 512
NUM_FILTERS = 26
PREEMPHASIS = 0.97
STACK = 4
INT16_SCALE = 2.0**15


def _hz_to_mel(hz):
    return 2595 * np.log10(1 + hz / 700.0)


def _mel_to_hz(mel):
    return 700 * (10 ** (mel / 2595.0) - 1)


@functools.lru_cache(maxsize=1)
def mel_filterbank() -> torch.Tensor:
    """``[26, 257]`` float64 triangular filters on FFT bins ``floor(513 * f / 16000)`` of 28 mel-spaced edges."""
    edges = np.floor(
        (NFFT + 1) * _mel_to_hz(np.linspace(0.0, _hz_to_mel(SAMPLE_RATE / 2), NUM_FILTERS + 2)) / SAMPLE_RATE
    )
    bins = np.arange(NFFT // 2 + 1, dtype=np.float64)[None, :]
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((bins >= low) & (bins < centre), (bins - low) / (centre - low), 0.0)
        falling = np.where((bins >= centre) & (bins < high), (high - bins) / (high - centre), 0.0)
    return torch.from_numpy(rising + falling)


def fbank_frames(num_samples: int) -> int:
    """Filterbank frames of ``num_samples`` samples (at least one: the signal is zero-padded to a frame)."""
    return 1 if num_samples <= WINDOW else 1 + math.ceil((num_samples - WINDOW) / HOP)


def logfbank(waveform: torch.Tensor) -> torch.Tensor:
    """``[frames, 26]`` log mel filterbank energies of a 16 kHz waveform on the int16 scale."""
    signal = waveform.to(torch.float64)
    signal = torch.cat([signal[:1], signal[1:] - PREEMPHASIS * signal[:-1]])
    frames = fbank_frames(signal.numel())
    signal = F.pad(signal, (0, (frames - 1) * HOP + WINDOW - signal.numel()))
    power = torch.fft.rfft(signal.unfold(0, WINDOW, HOP), n=NFFT).abs().square() / NFFT
    energies = power @ mel_filterbank().T
    energies = torch.where(energies == 0, torch.finfo(torch.float64).eps, energies)
    return energies.log().to(torch.float32)


def stack_frames(features: torch.Tensor, order: int = STACK) -> torch.Tensor:
    """``[n, F]`` -> ``[ceil(n / order), order * F]``: consecutive frames concatenated, the last group zero-padded."""
    missing = -features.shape[0] % order
    features = F.pad(features, (0, 0, 0, missing))
    return features.reshape(-1, order * features.shape[1])


def align_to(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Trim, or zero-pad at the end, ``features [n, F]`` to ``frames`` rows (audio to the video's length)."""
    if features.shape[0] >= frames:
        return features[:frames]
    return F.pad(features, (0, 0, 0, frames - features.shape[0]))


def normalize_frames(features: torch.Tensor) -> torch.Tensor:
    """Each frame to zero mean and unit variance over its features (``F.layer_norm`` without weights, eps 1e-5)."""
    return F.layer_norm(features, features.shape[1:])


def audio_features(waveform: torch.Tensor) -> torch.Tensor:
    """``[ceil(frames / 4), 104]`` stacked log filterbanks of a 16 kHz waveform in [-1, 1] (not normalised)."""
    return stack_frames(logfbank(waveform * INT16_SCALE))
