"""A trained model that transcribes waveforms: loaded from a run folder or a checkpoint folder."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slam_core.audio import RawAudio
from slam_core.errors import AudioError, CheckpointError, SpecError
from slam_core.features import pad
from slam_core.runtime.checkpoints import layout
from slam_core.spec import PipelineSpec, validate_spec

#: The spec a training run writes into its run folder.
RUN_SPEC_FILE = "spec.json"


def run_spec(path: Path) -> Path:
    """The ``spec.json`` of the run that ``path`` (a run folder or one of its checkpoint folders) belongs to."""
    for folder in (path, *path.parents[:2]):
        if (folder / RUN_SPEC_FILE).is_file():
            return folder / RUN_SPEC_FILE
    raise CheckpointError(
        f"{path}: no {RUN_SPEC_FILE} in it or in its run folder; name the spec it was trained with (--spec)"
    )


def load_spec_of_run(path: Path, overrides: Sequence[str] = ()) -> PipelineSpec:
    """The validated spec a run was trained with, with ``overrides`` (``section.field=value``) applied."""
    from slam_core.overrides import apply_overrides

    file = run_spec(path)
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError([f"{file}: cannot read the run's spec: {exc}"]) from None
    return validate_spec(apply_overrides(document, list(overrides)), source=str(file))


@dataclass
class Transcriber:
    """A model in eval mode and the ``infer`` settings it decodes with; :meth:`transcribe` takes a batch."""

    spec: PipelineSpec
    model: Any
    checkpoint: Path | None
    device: str = "cpu"

    @classmethod
    def load(cls, path: str | Path, *, spec: PipelineSpec | None = None, device: str | None = None) -> Transcriber:
        """Build the model of ``spec`` (default: the run's own ``spec.json``) with the weights of ``path``
        (a run folder: its best, else latest, checkpoint; or a checkpoint folder)."""
        from slam_core.model import build_model
        from slam_core.runtime.infer.weights import load_trained_weights

        path = Path(path)
        spec = spec if spec is not None else load_spec_of_run(path)
        model = build_model(spec)
        if model.modality != "audio":
            raise SpecError([f"{path}: slam serve transcribes audio; this model takes {model.modality}"])
        checkpoint = load_trained_weights(model, path) if _has_checkpoint(path) else None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(spec=spec, model=model.to(device).eval(), checkpoint=checkpoint, device=device)

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


def _has_checkpoint(path: Path) -> bool:
    return (path / layout.TRAINABLE_FILE).is_file() or bool(layout.checkpoints(path / layout.CHECKPOINTS_DIR))


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
