"""Base / Large parameter counts against upstream's AVHubertModel (fixtures/param_counts.json) and the paper."""

from __future__ import annotations

import json

import pytest
import torch
from avhubert_testing import FIXTURES
from slam_plugin_av_hubert.encoder import AVHubertEncoder
from slam_plugin_av_hubert.plugin import AVHubertConfig

UPSTREAM = json.loads((FIXTURES / "param_counts.json").read_text())
#: Shi et al. 2022 (AV-HuBERT), Table: BASE 103M, LARGE 325M parameters.
PAPER_MILLIONS = {"base": 103, "large": 325}
PARTS = {
    "video_frontend": ("feature_extractor_video.",),
    "audio_frontend": ("feature_extractor_audio.",),
    "fusion (layer_norm, post_extract_proj)": ("layer_norm.", "post_extract_proj."),
    "transformer": ("encoder.",),
}


def count(module: torch.nn.Module, prefixes: tuple[str, ...] = ("",)) -> int:
    return sum(p.numel() for name, p in module.named_parameters() if name.startswith(prefixes))


@pytest.mark.parametrize("size", ["base", "large"])
def test_counts_equal_upstream_without_its_pretraining_heads(size):
    with torch.device("meta"):
        encoder = AVHubertEncoder(AVHubertConfig(size=size, modality="audio-visual"))
    upstream = UPSTREAM[size]
    assert (
        count(encoder) == upstream["encoder"] == upstream["total"] - upstream["pretraining_only (final_proj, mask_emb)"]
    )
    for part, prefixes in PARTS.items():
        assert count(encoder, prefixes) == upstream[part], part
    assert round(upstream["total"] / 1e6) == PAPER_MILLIONS[size]


@pytest.mark.parametrize(("modality", "left_out"), [("video", "audio_frontend"), ("audio", "video_frontend")])
def test_a_single_modality_builds_only_its_frontend(modality, left_out):
    with torch.device("meta"):
        encoder = AVHubertEncoder(AVHubertConfig(size="large", modality=modality))
    assert count(encoder) == UPSTREAM["large"]["encoder"] - UPSTREAM["large"][left_out]


def test_on_the_meta_device_a_checkpoint_is_checked_not_copied(recwarn):
    """`slam inspect` builds on the meta device: the file's keys and shapes are checked, nothing is copied."""
    with torch.device("meta"):
        encoder = AVHubertEncoder(AVHubertConfig(path=str(FIXTURES / "avhubert-tiny-s2s.pt"), modality="video"))
    assert all(p.is_meta for p in encoder.parameters()) and count(encoder) == 35_856
    assert not [w for w in recwarn if "meta" in str(w.message)]
    assert encoder.load_report["not used with modality: video"]
