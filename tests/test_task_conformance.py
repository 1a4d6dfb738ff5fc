"""The built-in task heads other than asr pass the conformance kit (asr: tests/test_builtin_conformance.py)."""

from __future__ import annotations

from slam_core.testing import TaskHeadConformance


class TestContextualASRTask(TaskHeadConformance):
    component_name = "contextual-asr"
    sample = {"key": "utt-1", "source": "a.wav", "target": "Hello world", "biasing_words": ["world", "zwingli"]}


class TestAACTask(TaskHeadConformance):
    component_name = "aac"
    sample = {"key": "clip-1", "source": "a.wav", "target": ["a dog barks", "barking"]}


class TestMCTask(TaskHeadConformance):
    component_name = "mc"
    config = {"labels": ["blues", "jazz", "rock"]}
    sample = {"key": "gtzan-1", "source": "a.wav", "target": "Jazz"}


class TestVSRTask(TaskHeadConformance):
    component_name = "vsr"
    sample = {"key": "lrs3-1", "source": "a.mp4", "target": "Hello world"}


class TestSTTask(TaskHeadConformance):
    component_name = "st"
    config = {"target_lang": "German", "prompt": "Translate {source_text} into {target_lang}."}
    sample = {"key": "covost-1", "source": "a.wav", "target": "Hallo Welt", "source_text": "Hello world"}
