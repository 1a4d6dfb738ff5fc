"""mert: the SLAM encoder conformance kit on tiny random-init and checkpoint-loaded encoders."""

from __future__ import annotations

from pathlib import Path

from mert_testing import TINY

from slam_core.testing import EncoderConformance

FIXTURES = Path(__file__).resolve().parent / "fixtures"


class _MERTConformance(EncoderConformance):
    component_name = "mert"
    #: 24 kHz clips of 0.25 s, an odd length, and exactly the 400-sample receptive field (one frame).
    raw_sizes = (6000, 3217, 400)


class TestMERT95mLastLayer(_MERTConformance):
    config = {"size": "95m", "shape": TINY, "layer": None}


class TestMERT330mWeighted(_MERTConformance):
    """Pre-LN transformer, learned layer mix, per-clip normalisation."""

    config = {"size": "330m", "shape": TINY, "layer": "weighted", "normalize": True}


class TestMERTCheckpointMiddleLayer(_MERTConformance):
    """Loaded from the released-layout fixture, truncated after layer 1 of 3."""

    config = {"path": str(FIXTURES / "mert-tiny-95m"), "layer": 1}
