"""The ``vsr`` task head: lip reading, the transcript of a speaker video as target (metric ``wer``)."""

from __future__ import annotations

from slam_core.runtime.tasks.asr import TranscriptionTask


class VSRTask(TranscriptionTask):
    """Visual speech recognition: like ASR, with its own default prompt (see ``VSRTaskConfig``)."""
