"""mert: the SLAM encoder conformance kit on tiny random-init and checkpoint-loaded encoders."""

from __future__ import annotations

from pathlib import Path

from slam_core.testing import EncoderConformance

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "conv_dim": [16] * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}


class _MERTConformance(EncoderConformance):
    component_name = "mert"
    #: 24 kHz clips of 0.25 s, an odd length, and exactly the 400-sample receptive field (one frame).
    raw_sizes = (6000, 3217, 400)


class TestMERT95mLastLayer(_MERTConformance):
    config = {"size": "95m", "overrides": TINY, "layer": -1}


class TestMERT330mWeighted(_MERTConformance):
    """Pre-LN transformer, learned layer mix, per-clip normalisation."""

    config = {"size": "330m", "overrides": TINY, "layer": "weighted", "normalize": True}


class TestMERTCheckpointMiddleLayer(_MERTConformance):
    """Loaded from the released-layout fixture, truncated after layer 1 of 3."""

    config = {"path": str(FIXTURES / "mert-tiny-95m"), "layer": 1}
