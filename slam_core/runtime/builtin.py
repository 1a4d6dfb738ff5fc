"""What slam-core provides through its ``slam.plugins`` entry point: the core's reference components
(:mod:`slam_core.builtin`: toy encoder and LLM), the runtime's task heads, its metrics and ``slam serve``.

``asr``, ``contextual-asr``, ``aac``, ``mc``, ``vsr`` and ``st`` (configs in
:mod:`slam_core.runtime.tasks.configs`, heads in :mod:`slam_core.runtime.tasks`; see docs/tasks.md).
This module imports no torch; the factories do.
"""

from __future__ import annotations

from slam_core.builtin import slam_encoders, slam_llms
from slam_core.hookspecs import hookimpl
from slam_core.records import API_VERSION, CommandSpec, ComponentSpec, MetricSpec
from slam_core.runtime.metrics.registry import METRICS
from slam_core.runtime.tasks.configs import (
    AACTaskConfig,
    ASRTaskConfig,
    ContextualASRTaskConfig,
    MCTaskConfig,
    STTaskConfig,
    VSRTaskConfig,
)

_HEADS = "slam_core.runtime.tasks"

#: (name, config, factory, description) of each built-in task head.
_TASK_HEADS = [
    ("asr", ASRTaskConfig, f"{_HEADS}.asr:ASRTask", "speech recognition (WER)"),
    (
        "contextual-asr",
        ContextualASRTaskConfig,
        f"{_HEADS}.contextual_asr:ContextualASRTask",
        "ASR biased by per-utterance word lists: pseudo-hotwords in training, first-pass filter in decoding "
        "(WER, B-WER, U-WER)",
    ),
    (
        "aac",
        AACTaskConfig,
        f"{_HEADS}.aac:AACTask",
        "audio captioning, several references (CIDEr-D, SPIDEr)",
    ),
    (
        "mc",
        MCTaskConfig,
        f"{_HEADS}.mc:MCTask",
        "music classification over a closed label set (accuracy, F1)",
    ),
    ("vsr", VSRTaskConfig, f"{_HEADS}.vsr:VSRTask", "visual speech recognition / lip reading (WER)"),
    ("st", STTaskConfig, f"{_HEADS}.st:STTask", "speech translation (BLEU)"),
]


@hookimpl
def slam_task_heads() -> list[ComponentSpec]:
    return [
        ComponentSpec(name, config, factory, api=API_VERSION, description=description)
        for name, config, factory, description in _TASK_HEADS
    ]


@hookimpl
def slam_commands() -> list[CommandSpec]:
    help_line = "serve a trained run over HTTP with the OpenAI transcription API (needs slam-core[serve])"
    return [CommandSpec("serve", help_line, "slam_core.runtime.serve.command:serve_command", api=API_VERSION)]


@hookimpl
def slam_metrics() -> list[MetricSpec]:
    """The runtime's scorers (:data:`slam_core.runtime.metrics.registry.METRICS`), declared by name so that
    the core (the conformance kit, spec checks) knows them without importing the runtime."""
    return [
        MetricSpec(name, f"slam_core.runtime.metrics.registry:BUILTIN.{name}", api=API_VERSION, description=m.summary)
        for name, m in METRICS.items()
    ]


__all__ = ["slam_commands", "slam_encoders", "slam_llms", "slam_metrics", "slam_task_heads"]
