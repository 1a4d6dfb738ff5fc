"""Task heads built into slam-core: ``asr``, ``contextual-asr``, ``aac``, ``mc``, ``vsr`` and ``st``.

Configs (torch-free) are in :mod:`slam_core.runtime.tasks.configs`, prompt templates in
:mod:`slam_core.runtime.tasks.prompts`, the shared base head in :mod:`slam_core.runtime.tasks.base`; one
module per head. Contextual ASR also has :mod:`~slam_core.runtime.tasks.biasing_lists` (readers for
the LibriSpeech biasing lists), :mod:`~slam_core.runtime.tasks.hotwords` (training pseudo-hotwords) and
:mod:`~slam_core.runtime.tasks.biasing_filter` (decoding's first-pass filter). See docs/tasks.md.
"""
