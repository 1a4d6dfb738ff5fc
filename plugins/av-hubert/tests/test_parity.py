"""Parity with upstream av_hubert (hubert.py, resnet.py, fairseq's wav2vec2 TransformerEncoder) on the tiny fixture.

The references were computed by the upstream model on each clip alone, from upstream's own preprocessing
(fixtures/README.md); here the raw clips go through our preprocessor and our encoder as one padded batch.
Target: max abs difference <= 1e-5 in every mode (observed ~1.5e-6).
"""

from __future__ import annotations

import pytest
import torch
from avhubert_testing import CLIPS, FIXTURES, OUTPUT_KEYS, raw_clips, run_batch
from safetensors.torch import save_file
from slam_plugin_av_hubert.encoder import AVHubertEncoder
from slam_plugin_av_hubert.plugin import AVHubertConfig, AVHubertShape

ATOL = 1e-5
CHECKPOINTS = ("avhubert-tiny.pt", "avhubert-tiny-s2s.pt")


def encoder_for(**config) -> AVHubertEncoder:
    return AVHubertEncoder(AVHubertConfig(**config)).eval()


def assert_matches(output: torch.Tensor, lengths: torch.Tensor, expected: list[torch.Tensor]) -> float:
    """Each clip's frames equal upstream's (and the padding is zero); returns the largest difference."""
    worst = 0.0
    for index, reference in enumerate(expected):
        frames = reference.shape[0]
        assert int(lengths[index]) == frames, "frame count differs from upstream"
        torch.testing.assert_close(output[index, :frames], reference, atol=ATOL, rtol=0)
        assert not output[index, frames:].any(), "frames past a clip's length must be zero"
        worst = max(worst, float((output[index, :frames] - reference).abs().max()))
    return worst


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
@pytest.mark.parametrize("modality", ["video", "audio", "audio-visual"])
def test_output_matches_upstream(checkpoint, modality, reference):
    encoder = encoder_for(path=str(FIXTURES / checkpoint), modality=modality)
    output, lengths = run_batch(encoder, raw_clips(reference, modality))
    assert_matches(output, lengths, [reference[f"out.{OUTPUT_KEYS[modality]}.{i}"] for i in range(CLIPS)])


def test_middle_layer_matches_upstream_output_layer(reference):
    """``layer: 1`` is upstream's ``output_layer=1``: layer 1's output, no final LayerNorm."""
    encoder = encoder_for(path=str(FIXTURES / "avhubert-tiny.pt"), modality="video", layer=1)
    assert len(encoder.encoder.layers) == 1 and encoder.encoder.layer_norm is None
    output, lengths = run_batch(encoder, raw_clips(reference, "video"))
    assert_matches(output, lengths, [reference[f"out.video.layer1.{i}"] for i in range(CLIPS)])


@pytest.mark.parametrize(("layer", "key"), [(-2, "layer1"), (2, "video"), (-1, "video")])
def test_layers_count_hidden_states_as_every_encoder_does(layer, key, reference):
    """``layer`` indexes the L + 1 hidden states: -2 is layer 1 of 2; 2 and -1 are the final output
    (final LayerNorm included), as ``layer: null``."""
    encoder = encoder_for(path=str(FIXTURES / "avhubert-tiny.pt"), modality="video", layer=layer)
    output, lengths = run_batch(encoder, raw_clips(reference, "video"))
    suffix = "layer1." if key == "layer1" else ""
    assert_matches(output, lengths, [reference[f"out.video.{suffix}{i}"] for i in range(CLIPS)])


def test_post_ln_transformer_matches_upstream(reference, tmp_path):
    """The same weights with ``layer_norm_first: false`` (upstream's default, no release uses it), given as a
    .safetensors file, whose shape comes from the config."""
    encoder = encoder_for(path=str(FIXTURES / "avhubert-tiny.pt"), modality="audio-visual")
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, weights)
    shape = AVHubertShape.from_upstream(
        encoder.shape.model_dump(exclude={"resnet_widths"}) | {"layer_norm_first": False}
    )
    post_ln = encoder_for(path=str(weights), modality="video", size="base", shape=shape)
    output, lengths = run_batch(post_ln, raw_clips(reference, "video"))
    assert_matches(output, lengths, [reference[f"out.video.post_ln.{i}"] for i in range(CLIPS)])


@pytest.mark.parametrize(
    ("branch", "draws"),
    [("drop_audio", (0.1, 0.2)), ("drop_video", (0.1, 0.9)), ("keep_both", (0.9, 0.9))],
)
def test_training_forward_with_modality_dropout_matches_upstream(branch, draws, reference, monkeypatch):
    """Upstream's AVHubertModel.forward in training mode (BatchNorm on batch statistics, modality dropout 0.5 /
    audio 0.5), its two random draws forced; ours gets the same draws from torch.rand."""
    encoder = AVHubertEncoder(
        AVHubertConfig(
            path=str(FIXTURES / "avhubert-tiny.pt"), modality="audio-visual", modality_dropout=0.5, audio_dropout=0.5
        )
    ).train()
    monkeypatch.setattr(torch, "rand", lambda *size, **kwargs: torch.tensor(draws))
    output, lengths = run_batch(encoder, raw_clips(reference, "audio-visual")[:1])
    assert_matches(output, lengths, [reference[f"train.{branch}"]])


def test_safetensors_state_dict_loads_the_same(reference, tmp_path):
    """The released tensors saved as .safetensors (no cfg: `size` + `shape` give the shape) load identically."""
    encoder = encoder_for(path=str(FIXTURES / "avhubert-tiny.pt"), modality="audio-visual")
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, weights)
    shape = AVHubertShape.from_upstream(encoder.shape.model_dump(exclude={"resnet_widths"}))
    loaded = encoder_for(path=str(weights), modality="audio-visual", size="base", shape=shape)
    assert loaded.shape == encoder.shape  # widths read from the tensors
    output, lengths = run_batch(loaded, raw_clips(reference, "audio-visual"))
    assert_matches(output, lengths, [reference[f"out.av.{i}"] for i in range(CLIPS)])
