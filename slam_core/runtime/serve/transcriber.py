"""A trained model that transcribes waveforms: loaded from a run, checkpoint or export folder."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slam_core.audio import RawAudio
from slam_core.errors import AudioError, SpecError
from slam_core.features import pad
from slam_core.spec import PipelineSpec


@dataclass
class Transcriber:
    """A model in eval mode and the ``infer`` settings it decodes with; :meth:`transcribe` takes a batch."""

    spec: PipelineSpec
    model: Any
    checkpoint: Path | None
    device: str = "cpu"

    @classmethod
    def load(cls, path: str | Path, *, spec: PipelineSpec | None = None, device: str | None = None) -> Transcriber:
        """The model of ``path`` (a run folder: its best, else latest, checkpoint; a checkpoint folder; an
        export folder) built from ``spec`` (default: its own) with its trained weights."""
        from slam_core.runtime.infer.weights import load_trained, ready_for_decoding

        path = Path(path)
        spec, model, checkpoint = load_trained(path, spec=spec)
        if model.modality != "audio":
            raise SpecError([f"{path}: slam serve transcribes audio; this model takes {model.modality}"])
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(spec=spec, model=ready_for_decoding(model, device), checkpoint=checkpoint, device=device)

    @property
    def max_seconds(self) -> float:
        """The longest clip the spec's data section accepts."""
        return float(self.spec.data.max_duration_s)

    def transcribe(self, clips: Sequence[RawAudio]) -> list[str]:
        """The task's answer for each clip, decoded as one batch with the spec's ``infer`` options."""
        from slam_core.runtime.infer.service import decode_batch, generate_options

        preprocess = self.model.preprocessor()
        features, lengths = pad([torch.as_tensor(preprocess(clip)) for clip in clips])
        samples = [{"key": f"request-{index}"} for index in range(len(clips))]
        features, lengths = features.to(self.device), lengths.to(self.device)
        return decode_batch(self.model, features, lengths, samples, **generate_options(self.spec.infer))


def read_upload(data: bytes, name: str) -> RawAudio:
    """The mono float32 waveform of an uploaded audio file (any format and rate soundfile reads)."""
    import soundfile

    try:
        waveform, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"{name}: cannot read the audio ({exc}); send WAV, FLAC, OGG/Opus or MP3 ({len(data)} bytes received)"
        ) from None
    if waveform.shape[0] == 0:
        raise AudioError(f"{name}: the file holds no audio samples")
    return RawAudio(waveform.mean(axis=1) if waveform.shape[1] > 1 else waveform[:, 0], rate)
