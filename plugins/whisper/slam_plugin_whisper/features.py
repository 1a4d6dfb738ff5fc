"""Whisper's log-mel features in torch, cut into windows of at most 30 s."""

from __future__ import annotations

from typing import Any, Literal

import torch

from slam_core.audio import AudioError, prepare_waveform

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
#: Mel frames of one Whisper window (30 s); the encoder halves it to 1500 output frames.
WINDOW_FRAMES = 3000


def log_mel(waveform: torch.Tensor, filters: torch.Tensor, hop_length: int = HOP_LENGTH) -> torch.Tensor:
    """Whisper's log-mel ``[N // hop_length, n_mels]`` of a 16 kHz waveform ``[N]`` (N ≥ 201).

    Power STFT (Hann 400, hop ``hop_length``, Whisper's being 160; centred, last frame dropped) → mel
    ``filters [n_mels, 201]`` → log10 clamped at 1e-10 → floor at (max − 8) over this waveform → ``(x + 4) / 4``.
    """
    stft = torch.stft(waveform, N_FFT, hop_length, window=torch.hann_window(N_FFT), return_complex=True)
    power = stft[:, :-1].abs().square()
    log_spec = torch.clamp(filters @ power, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).T.contiguous()


def mel_filters(n_mels: int) -> torch.Tensor:
    """Slaney-normalised mel filters ``[n_mels, 201]`` over 0–8 kHz, as Whisper (and its HF extractor) use."""
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=1 + N_FFT // 2,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(bank).to(torch.float32).T.contiguous()


class WhisperLogMel:
    """Raw audio → log-mel ``[frames, n_mels]`` for the Whisper encoder; picklable, holds no weights.

    The waveform is cut into windows of ``window_frames × hop_length`` samples (30 s at Whisper's hop
    of 160); each window is featurised on its own and the frames are concatenated. ``variable``: a
    window of N samples gives ``N // hop_length`` frames normalised by its own maximum (pieces under 400 samples are
    zero-padded to 400). ``pad_to_30s``: every window is zero-padded to its full length first, so
    it gives exactly ``window_frames`` frames, as ``WhisperFeatureExtractor`` does by default.
    More than one window is refused unless ``long_audio="chunk"``.
    """

    def __init__(
        self,
        n_mels: int = 80,
        window_frames: int = WINDOW_FRAMES,
        mode: Literal["variable", "pad_to_30s"] = "variable",
        long_audio: Literal["error", "chunk"] = "error",
        resample: bool = False,
        hop_length: int = HOP_LENGTH,
    ):
        self.n_mels, self.window_frames, self.hop_length = n_mels, window_frames, hop_length
        self.mode, self.long_audio, self.resample = mode, long_audio, resample
        self._filters: torch.Tensor | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_filters": None}

    @property
    def window_samples(self) -> int:
        return self.window_frames * self.hop_length

    def __call__(self, raw: Any) -> torch.Tensor:
        waveform = prepare_waveform(raw, SAMPLE_RATE, resample=self.resample)
        if self.long_audio == "error" and waveform.numel() > self.window_samples:
            raise AudioError(
                f"audio: {waveform.numel() / SAMPLE_RATE:.2f} s exceeds the Whisper encoder's "
                f"{self.window_samples / SAMPLE_RATE:g} s window; set long_audio: chunk to encode it in pieces, "
                "or cut it into shorter segments"
            )
        if self._filters is None:
            self._filters = mel_filters(self.n_mels)
        pieces = [self._fit(piece) for piece in waveform.split(self.window_samples)]
        return torch.cat([log_mel(piece, self._filters, self.hop_length) for piece in pieces])

    def _fit(self, piece: torch.Tensor) -> torch.Tensor:
        """Zero-pad a piece to the full window (pad_to_30s) or to one FFT window (variable)."""
        target = self.window_samples if self.mode == "pad_to_30s" else N_FFT
        if piece.numel() >= target:
            return piece
        return torch.nn.functional.pad(piece, (0, target - piece.numel()))
