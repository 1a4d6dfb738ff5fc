"""Raw audio as encoders receive it, and the checks every audio preprocessor shares."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from slam_core.errors import AudioError


class RawAudio(NamedTuple):
    """A mono waveform ``[samples]`` and its sample rate in Hz."""

    waveform: Any
    sample_rate: int


def prepare_waveform(
    raw: RawAudio | Any,
    target_rate: int,
    *,
    resample: bool = True,
    max_seconds: float | None = None,
    name: str = "audio",
) -> torch.Tensor:
    """Validate ``raw`` and return a float32 mono waveform at ``target_rate``.

    ``raw`` is a :class:`RawAudio` or a bare 1-D waveform already at ``target_rate``. A
    different rate is resampled (``resample=True``) or refused. ``name`` (e.g. the file)
    is used in error messages.
    """
    if isinstance(raw, RawAudio):
        waveform, rate = raw.waveform, int(raw.sample_rate)
    else:
        waveform, rate = raw, target_rate
    waveform = torch.as_tensor(waveform, dtype=torch.float32)
    if waveform.ndim == 2 and 1 in waveform.shape:
        waveform = waveform.reshape(-1)
    if waveform.ndim != 1:
        raise AudioError(f"{name}: expected mono audio [samples], got shape {tuple(waveform.shape)}; mix it down first")
    if waveform.numel() == 0:
        raise AudioError(f"{name}: empty audio (no samples)")
    if not torch.isfinite(waveform).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    if rate <= 0:
        raise AudioError(f"{name}: sample rate must be positive, got {rate}")
    if rate != target_rate:
        if not resample:
            raise AudioError(
                f"{name}: sample rate {rate} Hz but the encoder expects {target_rate} Hz; "
                "resample the audio or set resample: true in the encoder spec"
            )
        import torchaudio.functional

        waveform = torchaudio.functional.resample(waveform, rate, target_rate)
    if max_seconds is not None and waveform.numel() > max_seconds * target_rate:
        raise AudioError(
            f"{name}: {waveform.numel() / target_rate:.2f} s of audio exceeds the {max_seconds:g} s this encoder "
            "accepts; cut it into shorter segments"
        )
    return waveform
