"""hf-audio: the SLAM encoder conformance kit on each family, random-init and loaded from folders."""

from __future__ import annotations

import pytest
from hf_testing import STABLE, tiny_shape

from slam_core.testing import EncoderConformance


class _Folder(EncoderConformance):
    """Loaded from a tiny folder written by transformers (``family`` and ``fields``, set per class)."""

    family = ""
    fields: dict = {}
    options: dict = {}

    @pytest.fixture(autouse=True)
    def _folder(self, tiny_folder):
        self.config = {"path": str(tiny_folder(self.family, **self.fields)), **self.options}


class TestWav2Vec2RandomInit(EncoderConformance):
    """Group-norm conv stack (masked over valid frames), post-LN transformer, the final output."""

    component_name = "wav2vec2"
    config = {"shape": tiny_shape("wav2vec2")}
    #: 16 kHz: 199, 119 and 79 frames, and the 40-sample receptive field (one frame).
    raw_sizes = (4000, 2400, 1601, 40)


class TestWav2Vec2PreLNFolderMiddleLayer(_Folder):
    """Layer-norm conv stack and pre-LN transformer, loaded from a folder, truncated after layer 1."""

    component_name = "wav2vec2"
    family, fields, options = "wav2vec2", STABLE, {"layer": 1}


class TestHubertPreLNWeighted(EncoderConformance):
    """Pre-LN: a learned mix of the 3 hidden states (the trainable head), per-clip normalisation."""

    component_name = "hubert"
    config = {"shape": tiny_shape("hubert", **STABLE), "layer": "weighted", "normalize": True}


class TestWavLMFolderLastLayer(_Folder):
    """Gated relative position bias; hidden state -1 (the last layer's output)."""

    component_name = "wavlm"
    family, options = "wavlm", {"layer": -1}


class TestData2VecAudioWeighted(EncoderConformance):
    """Three positional conv layers (padding re-zeroed between them), a learned layer mix."""

    component_name = "data2vec-audio"
    config = {"shape": tiny_shape("data2vec-audio"), "layer": "weighted"}
