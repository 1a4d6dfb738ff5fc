"""The ``asr`` task head: an instruction prompt and the transcript as target."""

from __future__ import annotations

from typing import Any

from slam_core.builtin import ASRTaskConfig
from slam_core.components import TaskHead


class ASRTask(TaskHead):
    """Speech recognition; samples carry their transcript under ``target``."""

    metrics = ("wer",)

    def __init__(self, config: ASRTaskConfig):
        self.config = config

    def instruction(self, sample: dict[str, Any]) -> str:
        return self.config.prompt

    def target(self, sample: dict[str, Any]) -> str:
        try:
            text = sample["target"]
        except KeyError:
            raise KeyError(f"asr sample {sample.get('key', '<no key>')!r} has no 'target' transcript") from None
        return text.lower() if self.config.lowercase_target else text

    def postprocess(self, text: str) -> str:
        return " ".join(text.split())
