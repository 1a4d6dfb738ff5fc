"""Raw audio as encoders receive it, the checks every audio preprocessor shares, and a waveform preprocessor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from slam_core.errors import AudioError


class RawAudio(NamedTuple):
    """One audio sample as the data pipeline hands it to an encoder's preprocessor.

    ``waveform``: the mono samples ``[samples]``, a float32 NumPy array as ``read_audio`` returns it
    (multi-channel files are mixed down, segments cut by the manifest's ``offset``/``duration``);
    ``sample_rate``: the file's rate in Hz, which need not be the encoder's: pass the sample to
    :func:`prepare_waveform`, which validates it and resamples.
    """

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


#: The variance floor of transformers' ``Wav2Vec2FeatureExtractor`` (``zero_mean_unit_var_norm``).
NORM_EPS = 1e-7


def zero_mean_unit_var(waveform: torch.Tensor) -> torch.Tensor:
    """``(x - mean) / sqrt(var + 1e-7)`` over the clip (population variance), as transformers' feature extractor."""
    centred = waveform - waveform.mean()
    return centred / torch.sqrt(centred.square().mean() + NORM_EPS)


@dataclass(frozen=True)
class WaveformPreprocessor:
    """Raw audio → float32 waveform ``[samples]`` at ``sample_rate``, for encoders that read waveforms.

    Picklable and weight-free, so data-loader workers run it. It refuses (with :class:`AudioError`)
    what :func:`prepare_waveform` refuses and clips shorter than ``min_samples`` (e.g. a conv stack's
    receptive field, below which the encoder gives no frame); ``normalize`` scales each clip to zero
    mean and unit variance.
    """

    sample_rate: int
    min_samples: int = 1
    resample: bool = True
    max_seconds: float | None = None
    normalize: bool = False
    name: str = "audio"

    def __call__(self, raw: RawAudio | Any) -> torch.Tensor:
        waveform = prepare_waveform(
            raw, self.sample_rate, resample=self.resample, max_seconds=self.max_seconds, name=self.name
        )
        if waveform.numel() < self.min_samples:
            raise AudioError(
                f"{self.name}: {waveform.numel()} samples at {self.sample_rate} Hz is shorter than the "
                f"{self.min_samples} samples ({1000 * self.min_samples / self.sample_rate:.1f} ms) the encoder needs "
                "for one frame; drop or pad clips that short"
            )
        return zero_mean_unit_var(waveform) if self.normalize else waveform
