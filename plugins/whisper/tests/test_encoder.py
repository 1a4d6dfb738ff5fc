"""The encoder against transformers' WhisperEncoder, window by window, and its refusals."""

from __future__ import annotations

import pytest
import torch
from slam_plugin_whisper.encoder import WhisperEncoder, hf_config
from slam_plugin_whisper.features import WhisperLogMel
from slam_plugin_whisper.plugin import WhisperEncoderConfig
from slam_plugin_whisper.presets import PRESETS
from transformers import WhisperFeatureExtractor
from transformers.models.whisper.modeling_whisper import WhisperEncoder as HFWhisperEncoder


def hf_reference(encoder: WhisperEncoder, mel: torch.Tensor) -> torch.Tensor:
    """transformers' own forward on ``mel [T, n_mels]``, its position table cut to ``T / 2`` rows
    (transformers accepts exactly 2 × max_source_positions frames)."""
    config = hf_config(encoder.config.architecture()._replace(max_source_positions=mel.shape[0] // 2))
    reference = HFWhisperEncoder(config).eval()
    state = encoder.model.state_dict()
    state["embed_positions.weight"] = state["embed_positions.weight"][: mel.shape[0] // 2]
    reference.load_state_dict(state)
    with torch.no_grad():
        return reference(mel.T[None]).last_hidden_state[0]


def encode(encoder: WhisperEncoder, mel: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        hidden, lengths = encoder(mel[None], torch.tensor([mel.shape[0]]))
    assert lengths.tolist() == [hidden.shape[1]]
    return hidden[0]


@pytest.mark.parametrize("seconds", [1.0, 0.5, 0.24])
def test_single_sample_equals_transformers(seconds, make_encoder, audio):
    """A full window, and shorter clips (positions sliced) against a Whisper with that many positions."""
    encoder = make_encoder()
    mel = encoder.preprocess(audio(int(16000 * seconds)))
    assert mel.shape[0] % 2 == 0
    torch.testing.assert_close(encode(encoder, mel), hf_reference(encoder, mel), atol=1e-4, rtol=0)


def test_pad_to_30s_equals_transformers_on_extractor_features(make_encoder, audio):
    """The original pipeline: WhisperFeatureExtractor (3000 frames) → WhisperEncoder → 1500 frames."""
    encoder = make_encoder(mode="pad_to_30s", shape={"max_position_embeddings": 1500, "num_layers": 1})
    waveform = audio(16000 * 2)
    mel = encoder.preprocess(waveform)
    extractor = WhisperFeatureExtractor(feature_size=80)
    expected_mel = extractor(waveform.numpy(), sampling_rate=16000, return_tensors="pt").input_features[0].T
    torch.testing.assert_close(mel, expected_mel, atol=1e-4, rtol=0)
    hidden = encode(encoder, mel)
    assert hidden.shape == (1500, 32)
    with torch.no_grad():
        reference = encoder.model(expected_mel.T[None]).last_hidden_state[0]
    torch.testing.assert_close(hidden, reference, atol=1e-4, rtol=0)


def test_long_audio_equals_its_windows_encoded_alone(make_encoder, audio):
    encoder = make_encoder(long_audio="chunk")
    mel = encoder.preprocess(audio(16000 * 2 + 4000))
    assert mel.shape[0] == 225
    pieces = [encode(encoder, piece) for piece in mel.split(100)]
    torch.testing.assert_close(encode(encoder, mel), torch.cat(pieces), atol=1e-5, rtol=0)


def test_eager_and_sdpa_agree_on_a_padded_batch(make_encoder, audio):
    sdpa, eager = make_encoder(), make_encoder(attn_implementation="eager")
    preprocess = sdpa.preprocessor()
    mels = [preprocess(audio(size, seed)) for seed, size in enumerate((16000, 7000, 1000))]
    batch = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True)
    lengths = torch.tensor([m.shape[0] for m in mels])
    with torch.no_grad():
        torch.testing.assert_close(sdpa(batch, lengths)[0], eager(batch, lengths)[0], atol=1e-5, rtol=0)


def test_declares_50_hz_and_its_width(make_encoder):
    encoder = make_encoder(shape={"num_mel_bins": 128})
    assert (encoder.sample_rate, encoder.frame_rate, encoder.output_dim) == (16000, 50.0, 32)
    assert encoder.preprocessor().n_mels == 128
    assert "train" not in vars(WhisperEncoder), "SlamModel keeps a frozen encoder in eval mode through train()"


def test_half_precision_dtype(make_encoder, audio):
    full, half = make_encoder(), make_encoder(dtype="bf16")
    assert all(p.dtype == torch.bfloat16 for p in half.parameters())
    mel = full.preprocess(audio(8000))
    output = encode(half, mel)
    assert output.dtype == torch.bfloat16
    torch.testing.assert_close(output.float(), encode(full, mel), atol=0.1, rtol=0.05)


def test_too_many_frames_are_refused_without_chunking(make_encoder):
    with pytest.raises(ValueError, match=r"120 mel frames exceed one 100-frame window .* long_audio: chunk"):
        make_encoder()(torch.zeros(1, 120, 80), torch.tensor([120]))


def test_pad_to_30s_refuses_unpadded_features(make_encoder):
    with pytest.raises(ValueError, match=r"pad_to_30s.*multiple of 100 mel frames.*got lengths \[100, 60\]"):
        make_encoder(mode="pad_to_30s")(torch.zeros(2, 100, 80), torch.tensor([100, 60]))


def test_wrong_feature_width_is_named(make_encoder):
    with pytest.raises(ValueError, match=r"log-mel features \[B, T, 128\], got \(1, 10, 80\)"):
        make_encoder(shape={"num_mel_bins": 128})(torch.zeros(1, 10, 80), torch.tensor([10]))


def test_presets_are_the_released_shapes():
    assert WhisperEncoderConfig().architecture() == PRESETS["tiny"]
    large = WhisperEncoderConfig(size="large-v3").architecture()
    assert (large.d_model, large.encoder_layers, large.num_mel_bins, large.max_source_positions) == (
        1280,
        32,
        128,
        1500,
    )
    small = WhisperEncoderConfig(size="small", shape={"num_layers": 2}).architecture()
    assert (small.d_model, small.encoder_layers) == (768, 2)
    with pytest.raises(ValueError, match=r"shape of w\.pt comes from the checkpoint"):
        WhisperEncoderConfig(path="w.pt").architecture()


def test_tiny_preset_builds_in_one_call_with_whispers_parameter_count():
    """whisper-tiny's encoder: 7.63 M trainable parameters + the 1500 × 384 sinusoid table."""
    encoder = WhisperEncoder(WhisperEncoderConfig(size="tiny"))
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    d, ffn, layers = 384, 1536, 4
    attention = 4 * d * d + 3 * d  # q, k, v, out; k_proj has no bias
    per_layer = attention + 2 * 2 * d + 2 * d * ffn + ffn + d
    assert trainable == 80 * d * 3 + d + d * d * 3 + d + layers * per_layer + 2 * d
    assert isinstance(encoder.preprocessor(), WhisperLogMel)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"path": "x.pt", "shape": {"hidden_size": 64}},
            r"whisper: path x\.pt is a checkpoint, which defines its own shape; drop shape \(it describes a "
            r"random-init model\) or set path: null",
        ),
        ({"path": "x.pt", "size": "base", "shape": {}}, r"whisper: path x\.pt .* drop size and shape \(they"),
        ({"shape": {"hidden_size": 30, "num_heads": 4}}, "hidden_size 30 is not divisible by num_heads 4"),
        ({"shape": {"num_mel_bins": 64}}, "num_mel_bins"),
        ({"shape": {"d_model": 64}}, r"whisper: 'd_model' is now 'shape\.hidden_size'"),
        ({"shape": {"window": 3}}, "Extra inputs"),
        ({"mode": "pad"}, "mode"),
        ({"window": 3}, "Extra inputs"),
        ({"num_layers": 2}, r"whisper: 'num_layers' is now 'shape\.num_layers' \(see docs/spec\.md\)"),
        ({"d_model": 64, "encoder_layers": 2}, r"'d_model' is now 'shape\.hidden_size'; 'encoder_layers' is now"),
        ({"max_source_positions": 8}, r"'max_source_positions' is now 'shape\.max_position_embeddings'"),
    ],
)
def test_bad_config_is_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        WhisperEncoderConfig(**settings)


def test_hop_320_halves_the_frame_rate_from_audio_to_hidden_states(make_encoder, audio):
    encoder = make_encoder(hop_length=320)
    assert encoder.frame_rate == 25.0
    features = encoder.preprocessor()(audio(16000 * 2))
    assert features.shape[0] == 100  # 2 s at 50 mel frames per second
    with torch.no_grad():
        hidden, lengths = encoder(features[None], torch.tensor([features.shape[0]]))
    assert hidden.shape[1] == int(lengths[0]) == 50  # 25 output frames per second
    assert encoder.preprocessor().window_samples == 2 * 16000  # the tiny window (100 mel frames) lasts 2 s, not 1


def test_a_hop_whisper_does_not_have_is_refused_naming_the_choices():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"hop_length\n  Input should be 160 or 320"):
        WhisperEncoderConfig(hop_length=200)
