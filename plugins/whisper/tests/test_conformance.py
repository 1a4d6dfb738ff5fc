"""The SLAM encoder conformance kit in every mode (tiny shapes: a window is 100 or 16 mel frames)."""

from __future__ import annotations

from slam_core.testing import EncoderConformance

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64}


class TestVariableLength(EncoderConformance):
    component_name = "whisper"
    config = {"shape": {**TINY, "max_position_embeddings": 50}}


class TestPaddedTo30s(EncoderConformance):
    """Every sample is padded to one whole window, so all lengths are the window's."""

    component_name = "whisper"
    config = {"shape": {**TINY, "max_position_embeddings": 50}, "mode": "pad_to_30s"}


class TestChunkedLongAudio(EncoderConformance):
    """A 16-frame (2560-sample) window: the 4000-sample clip spans two windows, encoded piece by piece."""

    component_name = "whisper"
    config = {"shape": {**TINY, "max_position_embeddings": 8}, "long_audio": "chunk"}
    raw_sizes = (4000, 2400, 1601, 5400)


class TestChunkedPaddedTo30s(EncoderConformance):
    component_name = "whisper"
    config = {"shape": {**TINY, "max_position_embeddings": 8}, "long_audio": "chunk", "mode": "pad_to_30s"}
    raw_sizes = (6000, 2400, 700)
