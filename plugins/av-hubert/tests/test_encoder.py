"""av-hubert encoder: modality dropout (training only), the config's checks and forward's input checks."""

from __future__ import annotations

import pytest
import torch
from avhubert_testing import FIXTURES, TINY, raw_clips, run_batch
from pydantic import ValidationError
from slam_plugin_av_hubert.encoder import AVHubertEncoder
from slam_plugin_av_hubert.plugin import AVHubertConfig

from slam_core import features as feature_ops

PRETRAINED = str(FIXTURES / "avhubert-tiny.pt")


def encoder_for(**config) -> AVHubertEncoder:
    return AVHubertEncoder(AVHubertConfig(path=PRETRAINED, **config))


# ----------------------------------------------------------------------------- modality dropout


def test_modality_dropout_never_acts_in_evaluation(reference):
    always = encoder_for(modality="audio-visual", modality_dropout=1.0, audio_dropout=1.0).eval()
    never = encoder_for(modality="audio-visual").eval()
    clips = raw_clips(reference, "audio-visual")
    first, _ = run_batch(always, clips)
    torch.testing.assert_close(first, run_batch(always, clips)[0], atol=0, rtol=0)
    torch.testing.assert_close(first, run_batch(never, clips)[0], atol=0, rtol=0)


@pytest.mark.parametrize(("audio_dropout", "kept"), [(1.0, "video"), (0.0, "audio")])
def test_a_dropped_modality_in_training_is_the_single_modality_encoder(audio_dropout, kept, reference):
    """Dropping the audio leaves what the video-only encoder computes from the same video (zeros for the audio
    features), dropping the video what the audio-only one computes; BatchNorm on batch statistics in both."""
    dropping = encoder_for(modality="audio-visual", modality_dropout=1.0, audio_dropout=audio_dropout).train()
    single = encoder_for(modality=kept).train()
    padded, lengths = feature_ops.pad([dropping.preprocess(raw) for raw in raw_clips(reference, "audio-visual")])
    with torch.no_grad():
        output, _ = dropping(padded, lengths)
        expected, _ = single(padded[kept], lengths)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=1e-5)


def test_modality_dropout_draws_once_per_batch_with_the_configured_odds(monkeypatch):
    encoder = AVHubertEncoder(
        AVHubertConfig(shape=TINY, modality="audio-visual", modality_dropout=0.5, audio_dropout=0.25)
    ).train()
    video, audio = torch.ones(2, 3, 8), torch.ones(2, 3, 8)
    torch.manual_seed(0)
    outcomes = {"both": 0, "audio dropped": 0, "video dropped": 0}
    for _ in range(2000):
        kept_video, kept_audio = encoder._drop_modality(video, audio)
        outcome = "audio dropped" if not kept_audio.any() else "video dropped" if not kept_video.any() else "both"
        assert kept_video.all() or not kept_video.any(), "a modality is dropped for the whole batch"
        outcomes[outcome] += 1
    assert abs(outcomes["both"] - 1000) < 100
    assert abs(outcomes["audio dropped"] - 250) < 60 and abs(outcomes["video dropped"] - 750) < 80


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"modality_dropout": 0.5}, r"modality_dropout / audio_dropout need modality: audio-visual"),
        (
            {"path": "x.pt", "shape": {"num_layers": 2}},
            r"av-hubert: path x\.pt is a checkpoint, which defines its own shape; drop shape \(it describes a "
            r"random-init model\) or set path: null",
        ),
        ({"path": "x.pt", "size": "base"}, r"av-hubert: path x\.pt is a checkpoint, .* drop size"),
        ({"shape": {"encoder_depth": 2}}, r"shape\.encoder_depth\n  Extra inputs are not permitted"),
        (
            {"shape": {"num_heads": 5}},
            r"av-hubert: invalid shape \(large preset \+ shape\): hidden_size \(encoder_embed_dim\) 1024 is not "
            r"divisible by num_heads \(encoder_attention_heads\) 5 \[",
        ),
        ({"size": "base", "layer": 13}, r"layer 13 is out of range: the model has 12 layers"),
        ({"size": "base", "layer": -14}, r"layer -14 is out of range: .*\(or -13\.\.-1 from the end\)"),
        ({"overrides": {"encoder_layers": 2}}, r"av-hubert: 'overrides' is now 'shape' \(see docs/spec\.md\)"),
        ({"encoder_layers": 2}, r"av-hubert: 'encoder_layers' is now 'shape\.num_layers' \(see docs/spec\.md\)"),
        ({"shape": {"encoder_embed_dim": 2}}, r"av-hubert: 'encoder_embed_dim' is now 'shape\.hidden_size'"),
        ({"size": "huge"}, r"Input should be 'base' or 'large'"),
        ({"modality": "lips"}, r"Input should be 'video', 'audio' or 'audio-visual'"),
    ],
)
def test_invalid_configs_name_the_problem(config, message):
    with pytest.raises(ValidationError, match=message):
        AVHubertConfig(**config)


@pytest.mark.parametrize(
    ("modality", "sample_rate", "modules"),
    [
        ("video", 25, {"feature_extractor_video"}),
        ("audio", 16000, {"feature_extractor_audio"}),
        ("audio-visual", 25, {"feature_extractor_video", "feature_extractor_audio"}),
    ],
)
def test_rates_and_frontends_per_modality(modality, sample_rate, modules):
    encoder = AVHubertEncoder(AVHubertConfig(shape=TINY, modality=modality))
    assert (encoder.modality, encoder.sample_rate, encoder.frame_rate, encoder.output_dim) == (
        modality,
        sample_rate,
        25.0,
        32,
    )
    assert {name for name, _ in encoder.named_children() if name.startswith("feature_extractor")} == modules
    assert encoder.output_lengths(torch.tensor([7, 1])).tolist() == [7, 1]


# ----------------------------------------------------------------------------- forward's checks


@pytest.mark.parametrize(
    ("modality", "features", "message"),
    [
        ("video", {"video": torch.zeros(1, 2, 8, 8)}, r"\(video\) expects one tensor of features, got a dict"),
        ("video", torch.zeros(1, 2, 104), r"expects lip crops \[batch, frames, H, W\], got shape \(1, 2, 104\)"),
        ("audio", torch.zeros(1, 2, 26), r"expects filterbanks \[batch, frames, 104\], got \(1, 2, 26\)"),
        ("audio-visual", torch.zeros(1, 2, 104), r"expects features \{'video', 'audio'\}, got Tensor"),
        (
            "audio-visual",
            {"video": torch.zeros(1, 3, 8, 8), "audio": torch.zeros(1, 2, 104)},
            r"video \(1, 3\) and audio \(1, 2\) differ in batch or frames",
        ),
    ],
)
def test_features_that_do_not_fit_the_modality_are_refused(modality, features, message):
    encoder = AVHubertEncoder(AVHubertConfig(shape=TINY, modality=modality))
    with pytest.raises(ValueError, match=message):
        encoder(features, torch.tensor([2]))


def test_lengths_must_fit_the_frames():
    encoder = AVHubertEncoder(AVHubertConfig(shape=TINY, modality="audio"))
    with pytest.raises(ValueError, match=r"lengths \[0, 2\] must lie in 1\.\.2"):
        encoder(torch.zeros(2, 2, 104), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"lengths has shape \(1,\), expected \(2,\)"):
        encoder(torch.zeros(2, 2, 104), torch.tensor([2]))


def test_shape_names_every_architecture_field_once():
    from slam_plugin_av_hubert.plugin import ARCHITECTURE_FIELDS, AVHubertShape

    upstream = [AVHubertShape.upstream_names.get(name, name) for name in AVHubertShape.model_fields]
    assert sorted(upstream) == sorted(ARCHITECTURE_FIELDS)
    architecture = AVHubertConfig(size="base", shape={"num_layers": 3, "conv_pos_kernel": 8}).architecture()
    assert (architecture.encoder_layers, architecture.conv_pos, architecture.encoder_embed_dim) == (3, 8, 768)
