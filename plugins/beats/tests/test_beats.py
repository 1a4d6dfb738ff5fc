"""beats: the conformance kit, the frame/token arithmetic, the preprocessor and the forward checks."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from slam_plugin_beats.attention import relative_position_buckets
from slam_plugin_beats.encoder import BeatsEncoder
from slam_plugin_beats.features import BeatsFbank, fbank_frames, min_samples
from slam_plugin_beats.plugin import BeatsConfig

from slam_core.audio import AudioError, RawAudio
from slam_core.testing import EncoderConformance

TINY = {
    "shape": {
        "patch_embed_dim": 16,
        "num_layers": 2,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_heads": 4,
        "conv_pos_kernel": 7,
        "conv_pos_groups": 4,
        "num_buckets": 16,
        "max_distance": 32,
    }
}

#: Pre-LN, no relative position bias, no projection, 8×8 patches (16 frequency bands).
TINY_PRENORM = {
    "shape": {
        "patch_size": 8,
        "patch_embed_dim": 16,
        "num_layers": 1,
        "hidden_size": 16,
        "intermediate_size": 24,
        "num_heads": 2,
        "activation": "gelu_accurate",
        "layer_norm_first": True,
        "deep_norm": False,
        "conv_pos_kernel": 4,
        "conv_pos_groups": 2,
        "relative_position_embedding": False,
        "gru_rel_pos": False,
    }
}


class TestBeatsConformance(EncoderConformance):
    component_name = "beats"
    config = TINY
    # 48, 33 and 16 fbank frames: 3, 2 (with a partial patch dropped) and 1 time step.
    raw_sizes = (8000, 5600, 2800)


class TestBeatsPrenormConformance(EncoderConformance):
    component_name = "beats"
    config = TINY_PRENORM
    raw_sizes = (4400, 2000, 1520)


@functools.lru_cache(maxsize=2)
def tiny_encoder(prenorm: bool = False) -> BeatsEncoder:
    torch.manual_seed(0)
    return BeatsEncoder(BeatsConfig(**(TINY_PRENORM if prenorm else TINY))).eval()


def patch_reference_tokens(frames: int, patch: int) -> int:
    """Tokens a ``patch``-strided Conv2d makes of ``[frames, 128]``, measured by running one."""
    if frames < patch:
        return 0
    return F.conv2d(torch.zeros(1, 1, frames, 128), torch.zeros(1, 1, patch, patch), stride=patch)[0, 0].numel()


# ----------------------------------------------------------------------------- lengths


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6000))
@example(399)
@example(400)
@example(2799)
@example(2800)
def test_fbank_frames_match_kaldi(num_samples):
    from torchaudio.compliance import kaldi

    waveform = torch.randn(1, num_samples)
    try:
        frames = kaldi.fbank(waveform, num_mel_bins=128, frame_length=25, frame_shift=10).shape[0]
    except AssertionError:  # torchaudio refuses audio shorter than one window
        frames = 0
    assert fbank_frames(num_samples) == frames


@pytest.mark.parametrize("patch", [16, 8])
def test_min_samples_is_the_first_length_with_one_patch(patch):
    assert fbank_frames(min_samples(patch)) == patch
    assert fbank_frames(min_samples(patch) - 1) == patch - 1


@settings(max_examples=15, deadline=None)
@given(
    lengths=st.lists(st.integers(16, 90), min_size=1, max_size=3),
    prenorm=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_forward_lengths_are_exact_and_padding_never_leaks(lengths, prenorm, seed):
    encoder = tiny_encoder(prenorm)
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), 128, generator=generator)
    for row, n in enumerate(lengths):
        features[row, n:] = 100.0  # garbage in the padding must not reach any valid frame
    n = torch.tensor(lengths)
    expected = [patch_reference_tokens(length, encoder.patch_size) for length in lengths]
    with torch.no_grad():
        hidden, out_lengths = encoder(features, n)
        assert encoder.output_lengths(n).tolist() == expected
        assert out_lengths.tolist() == expected
        assert hidden.shape == (len(lengths), max(expected), encoder.output_dim)
        for row, length in enumerate(lengths):
            alone, _ = encoder(features[row : row + 1, :length], n[row : row + 1])
            torch.testing.assert_close(hidden[row, : expected[row]], alone[0], atol=1e-5, rtol=1e-4)
            assert not hidden[row, expected[row] :].any(), "padding frames must be zero"


@settings(max_examples=10, deadline=None)
@given(st.integers(2800, 12000))
def test_waveform_to_tokens(num_samples):
    encoder = tiny_encoder()
    features = encoder.preprocess(0.1 * torch.randn(num_samples))
    assert features.shape == (fbank_frames(num_samples), 128)
    with torch.no_grad():
        hidden, lengths = encoder(features[None], torch.tensor([features.shape[0]]))
    assert hidden.shape[1] == lengths.item() == (fbank_frames(num_samples) // 16) * 8


def test_frame_rate_counts_tokens_per_second():
    encoder = tiny_encoder()
    ten_seconds = torch.tensor([1000])  # fbank frames: 62 whole steps of 16, 8 frames dropped
    tokens = encoder.output_lengths(ten_seconds).item()
    assert encoder.frame_rate == 50.0
    assert math.isclose(tokens / 10, encoder.frame_rate, rel_tol=0.01)
    assert tiny_encoder(prenorm=True).frame_rate == 16 * 100 / 8


# ----------------------------------------------------------------------------- relative positions


@settings(max_examples=30, deadline=None)
@given(length=st.integers(1, 200), half=st.integers(2, 200), max_distance=st.integers(2, 2000))
def test_relative_position_buckets(length, half, max_distance):
    num_buckets = 2 * half
    exact = half // 2
    assume(max_distance > exact)
    buckets = relative_position_buckets(length, num_buckets, max_distance)
    offsets = torch.arange(length)[None, :] - torch.arange(length)[:, None]
    distance = offsets.abs()
    assert buckets.min() >= 0 and buckets.max() < num_buckets
    # keys after the query use the upper half, at the same bucket as the mirrored offset
    mirrored = buckets.T
    assert torch.equal(buckets[offsets > 0], mirrored[offsets > 0] + half)
    near = distance < exact
    assert torch.equal(buckets[near & (offsets <= 0)], distance[near & (offsets <= 0)])
    # bucket grows with distance, never past the half's last bucket
    row = buckets[-1].flip(0)  # distances 0, 1, ... looking back from the last query
    assert (row[1:] >= row[:-1]).all()
    if length - 1 >= max_distance:
        assert row[-1] == half - 1


# ----------------------------------------------------------------------------- preprocessor


def test_fbank_normalisation_uses_mean_and_twice_the_std():
    waveform = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(3))
    raw = BeatsFbank(mean=0.0, std=0.5)(waveform)  # (x - 0) / (2 * 0.5) = x
    normalised = BeatsFbank()(waveform)
    torch.testing.assert_close(normalised, (raw - 15.41663) / (2 * 6.55582))


def test_other_sample_rates_are_resampled_or_refused():
    from torchaudio.functional import resample

    waveform = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(4))
    raw = RawAudio(waveform, 8000)
    torch.testing.assert_close(BeatsFbank(resample=True)(raw), BeatsFbank()(resample(waveform, 8000, 16000)))
    with pytest.raises(AudioError, match=r"8000 Hz but the encoder expects 16000 Hz.*resample: true"):
        BeatsFbank()(raw)


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (torch.zeros(0), "empty audio"),
        (torch.full((4000,), float("nan")), "NaN"),
        (torch.zeros(2, 4000), "mono"),
        (torch.zeros(2799), r"2799 samples .* shorter than one BEATs patch.* 2800 samples \(0.175 s\)"),
        (torch.zeros(16000 * 3), "exceeds the 2 s"),
    ],
)
def test_bad_audio_is_refused_with_a_reason(waveform, message):
    with pytest.raises(AudioError, match=message):
        BeatsFbank(max_seconds=2.0)(waveform)


def test_one_patch_of_audio_is_enough():
    assert BeatsFbank()(torch.zeros(2800)).shape == (16, 128)


def test_preprocessor_follows_the_config():
    config = BeatsConfig(**TINY, resample=True, max_seconds=5.0, fbank_mean=1.0, fbank_std=2.0)
    preprocess = BeatsEncoder(config).preprocessor()
    assert (preprocess.resample, preprocess.max_seconds, preprocess.mean, preprocess.std) == (True, 5.0, 1.0, 2.0)


# ----------------------------------------------------------------------------- forward checks and config


def test_too_short_batch_items_are_named():
    encoder = tiny_encoder()
    with pytest.raises(ValueError, match=r"batch item\(s\) \[1\] have \[15\] fbank frames"):
        encoder(torch.zeros(2, 32, 128), torch.tensor([32, 15]))


@pytest.mark.parametrize("shape", [(1, 32, 80), (32, 128)])
def test_features_of_the_wrong_shape_are_refused(shape):
    with pytest.raises(ValueError, match=r"expects fbank features \[batch, frames, 128\]"):
        tiny_encoder()(torch.zeros(shape), torch.tensor([32]))


def test_defaults_are_the_released_iter3_shape():
    encoder = BeatsEncoder(BeatsConfig())
    assert (encoder.output_dim, encoder.sample_rate, encoder.frame_rate) == (768, 16000, 50.0)
    parameters = sum(p.numel() for p in encoder.parameters())
    assert 89e6 < parameters < 91e6, parameters  # "BEATs ... 90M parameters" (paper, Table 1)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"shape": {"num_heads": 5}},
            r"beats: shape: hidden_size \(encoder_embed_dim\) 768 is not divisible by num_heads "
            r"\(encoder_attention_heads\) 5",
        ),
        ({"shape": {"conv_pos_groups": 7}}, r"768 is not divisible by conv_pos_groups 7"),
        ({"shape": {"layer_norm_first": True}}, "deep_norm and layer_norm_first cannot both be true"),
        ({"shape": {"activation": "glu"}}, r"shape\.activation"),
        ({"shape": {"patch_size": 0}}, r"shape\.patch_size\n  Input should be greater than 0"),
        ({"shape": {"num_buckets": 320, "max_distance": 80}}, "max_distance 80 must exceed num_buckets // 4 = 80"),
        ({"max_seconds": 0}, "greater than 0"),
        ({"no_such_field": 1}, "Extra inputs"),
        ({"size": "large"}, "Input should be 'base'"),
        (
            {"path": "b.pt", "shape": {"num_layers": 2}},
            r"beats: path b\.pt is a checkpoint, which defines its own shape; drop shape \(it describes a "
            r"random-init model\) or set path: null",
        ),
        ({"encoder_layers": 2}, r"beats: 'encoder_layers' is now 'shape\.num_layers' \(see docs/spec\.md\)"),
        (
            {"embed_dim": 16, "conv_pos": 4},
            r"beats: 'embed_dim' is now 'shape\.patch_embed_dim'; 'conv_pos' is now 'shape\.conv_pos_kernel'",
        ),
        ({"shape": {"encoder_embed_dim": 32}}, r"beats: 'encoder_embed_dim' is now 'shape\.hidden_size'"),
        ({"hidden_size": 32}, r"beats: 'hidden_size' is now 'shape\.hidden_size'"),
    ],
)
def test_bad_config_is_refused(bad, message):
    with pytest.raises(ValidationError, match=message):
        BeatsConfig.model_validate({"type": "beats", **bad})


def test_shape_names_every_architecture_field_once():
    from slam_plugin_beats.plugin import ARCHITECTURE_FIELDS, BeatsShape

    upstream = [BeatsShape.upstream_names.get(name, name) for name in BeatsShape.model_fields]
    assert sorted(upstream) == sorted(ARCHITECTURE_FIELDS)
    architecture = BeatsConfig(size="base", shape={"num_layers": 3, "patch_size": 8}).architecture()
    assert (architecture.encoder_layers, architecture.input_patch_size, architecture.encoder_embed_dim) == (3, 8, 768)


def test_composes_with_a_projector_and_llm():
    """In a SlamModel, a projector stacking 8 frames gives one LLM position per 160 ms time step."""
    pytest.importorskip("slam_plugin_linear_projector")
    from slam_core.model import build_model
    from slam_core.spec import validate_spec

    spec = validate_spec(
        {
            "encoder": {"type": "beats", **TINY},
            "projector": {"type": "linear-projector", "k": 8, "hidden_dim": 16},
            "llm": {
                "type": "toy-llm",
                "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64},
            },
            "task": {"type": "asr"},
        }
    )
    model = build_model(spec)
    generator = torch.Generator().manual_seed(5)
    features = [model.encoder.preprocess(0.1 * torch.randn(n, generator=generator)) for n in (8000, 3000)]
    lengths = torch.tensor([f.shape[0] for f in features])
    embeds, embed_lengths = model.encode(torch.nn.utils.rnn.pad_sequence(features, batch_first=True), lengths)
    assert embed_lengths.tolist() == [n // 16 for n in lengths.tolist()] == [3, 1]
    assert embeds.shape == (2, 3, 32)
    text = model.text_inputs([{"key": "a", "target": "dog barks"}, {"key": "b", "target": "rain"}])
    output = model(torch.nn.utils.rnn.pad_sequence(features, batch_first=True), lengths, text)
    assert torch.isfinite(output.loss)
