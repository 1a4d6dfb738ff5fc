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
    "d_model": 32,
    "encoder_layers": 2,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "max_source_positions": 50,
}


@pytest.fixture
def make_encoder():
    """``make_encoder(**config) -> WhisperEncoder`` in eval mode, tiny shape unless ``path`` is given."""

    def make(seed: int = 0, **settings) -> WhisperEncoder:
        torch.manual_seed(seed)
        fields = settings if "path" in settings else {**TINY_SHAPE, **settings}
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
