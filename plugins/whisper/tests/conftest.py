"""Shared builders for the whisper plugin's tests: tiny shapes, seeded encoders, seeded audio."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from slam_plugin_whisper.encoder import WhisperEncoder
from slam_plugin_whisper.plugin import WhisperEncoderConfig

FIXTURES = Path(__file__).parent / "fixtures"
#: A tiny random-init shape; its window is 2 × 50 = 100 mel frames (1 s) instead of 30 s.
TINY_SHAPE = {
    "hidden_size": 32,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 50,
}


@pytest.fixture
def make_encoder():
    """``make_encoder(shape=None, **config) -> WhisperEncoder`` in eval mode; the tiny shape (with ``shape``
    applied) unless ``path`` is given."""

    def make(seed: int = 0, shape: dict | None = None, **settings) -> WhisperEncoder:
        torch.manual_seed(seed)
        fields = settings if "path" in settings else {"shape": {**TINY_SHAPE, **(shape or {})}, **settings}
        return WhisperEncoder(WhisperEncoderConfig(**fields)).eval()

    return make


@pytest.fixture
def audio():
    """``audio(samples, seed=0) -> waveform`` of seeded noise plus a tone, float32 in [-1, 1]."""

    def make(samples: int, seed: int = 0) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        tone = 0.3 * torch.sin(2 * torch.pi * 440 * torch.arange(samples) / 16000)
        return tone + 0.05 * torch.randn(samples, generator=generator)

    return make


@pytest.fixture
def openai_reference() -> dict:
    return torch.load(FIXTURES / "openai_reference.pt", weights_only=True)
