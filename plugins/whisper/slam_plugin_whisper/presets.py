"""Encoder dimensions of the released Whisper sizes (plain data: imports no torch)."""

from __future__ import annotations

from typing import Literal, NamedTuple

SizeName = Literal["tiny", "base", "small", "medium", "large-v2", "large-v3"]


class WhisperDims(NamedTuple):
    """The encoder's dimensions under transformers' ``WhisperConfig`` names; ``2 * max_source_positions``
    mel frames make one window (30 s)."""

    d_model: int
    encoder_layers: int
    encoder_attention_heads: int
    encoder_ffn_dim: int
    num_mel_bins: int
    max_source_positions: int = 1500


#: Encoder dims of OpenAI's checkpoints (``ModelDimensions`` n_audio_*; the FFN is 4 × d_model).
PRESETS: dict[str, WhisperDims] = {
    "tiny": WhisperDims(384, 4, 6, 1536, 80),
    "base": WhisperDims(512, 6, 8, 2048, 80),
    "small": WhisperDims(768, 12, 12, 3072, 80),
    "medium": WhisperDims(1024, 24, 16, 4096, 80),
    "large-v2": WhisperDims(1280, 32, 20, 5120, 80),
    "large-v3": WhisperDims(1280, 32, 20, 5120, 128),
}
