"""slam-core's own components pass the conformance kit like any plugin's."""

from __future__ import annotations

from slam_core.testing import EncoderConformance, LLMConformance, TaskHeadConformance


class TestToyEncoder(EncoderConformance):
    component_name = "toy-encoder"
    config = {"shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2}}


class TestToyLLM(LLMConformance):
    component_name = "toy-llm"
    config = {"shape": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48}}


class TestASRTask(TaskHeadConformance):
    component_name = "asr"
