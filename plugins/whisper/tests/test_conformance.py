"""The SLAM encoder conformance kit in every mode (tiny shapes: a window is 100 or 16 mel frames)."""

from __future__ import annotations

from slam_core.testing import EncoderConformance

TINY = {"d_model": 32, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 64}


class TestVariableLength(EncoderConformance):
    component_name = "whisper"
    config = {**TINY, "max_source_positions": 50}


class TestPaddedTo30s(EncoderConformance):
    """Every sample is padded to one whole window, so all lengths are the window's."""

    component_name = "whisper"
    config = {**TINY, "max_source_positions": 50, "mode": "pad_to_30s"}


class TestChunkedLongAudio(EncoderConformance):
    """A 16-frame (2560-sample) window: the 4000-sample clip spans two windows, encoded piece by piece."""

    component_name = "whisper"
    config = {**TINY, "max_source_positions": 8, "long_audio": "chunk"}
    raw_sizes = (4000, 2400, 1601, 5400)


class TestChunkedPaddedTo30s(EncoderConformance):
    component_name = "whisper"
    config = {**TINY, "max_source_positions": 8, "long_audio": "chunk", "mode": "pad_to_30s"}
    raw_sizes = (6000, 2400, 700)
