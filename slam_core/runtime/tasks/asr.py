"""The ``asr`` task head: an instruction prompt and the transcript as target (metric ``wer``)."""

from __future__ import annotations

from typing import Any

from slam_core.runtime.tasks.base import PromptedTask
from slam_core.runtime.tasks.configs import ASRTaskConfig


class TranscriptionTask(PromptedTask):
    """Transcription: samples carry their transcript under ``target`` (lower-cased with ``lowercase_target``)."""

    default_metrics = ("wer",)
    config: ASRTaskConfig

    def target(self, sample: dict[str, Any]) -> str:
        text = self.text_field(sample, "target", "the transcript")
        return text.lower() if self.config.lowercase_target else text


class ASRTask(TranscriptionTask):
    """Speech recognition."""
