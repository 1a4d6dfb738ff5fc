"""The frozen encoder's output cache: later epochs skip the encoder and train exactly the same."""

from __future__ import annotations

import pytest
import torch
from support.synthetic import toy_spec, train_synthetic

from slam_core.model import build_component
from slam_core.runtime.train.encoder_cache import EncoderCache, encoder_fingerprint
from slam_core.spec import validate_spec
from slam_core.toy import ToyEncoder


@pytest.fixture
def encoder_calls(monkeypatch):
    """How many times the toy encoder really computed (a list of batch sizes)."""
    calls = []
    real = ToyEncoder.forward

    def counting(self, features, lengths):
        calls.append(features.shape[0])
        return real(self, features, lengths)

    monkeypatch.setattr(ToyEncoder, "forward", counting)
    return calls


def test_the_second_epoch_does_not_call_the_encoder_and_gives_identical_losses(tmp_path, encoder_calls):
    data = {"batches": 3, "batch_size": 2, "valid_batches": 1}
    plain = train_synthetic(toy_spec(train={"epochs": 2}), tmp_path / "plain", **data)
    per_step = []
    cached_spec = toy_spec(train={"epochs": 2, "encoder_cache_dir": str(tmp_path / "cache")})
    encoder_calls.clear()
    cached = train_synthetic(
        cached_spec, tmp_path / "cached", **data, on_step=lambda info: per_step.append(len(encoder_calls))
    )
    assert per_step[:3] == [1, 2, 3], "epoch 1 encodes each batch once"
    assert per_step[3:] == [4, 4, 4], "epoch 2 never calls the encoder (one call between: the validation)"
    assert len(encoder_calls) == 4, "the second validation is served from the cache too"
    assert cached.losses == plain.losses, "cached encoder outputs give bit-identical losses"
    assert cached.validations == plain.validations
    entries = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(entries) == 8, "one entry per train and valid sample"


def test_another_encoder_or_weights_never_reads_the_entries():
    spec = validate_spec(toy_spec())
    encoder = build_component("encoder", spec.encoder)
    base = encoder_fingerprint(encoder, spec.encoder, "fp32")
    assert encoder_fingerprint(encoder, spec.encoder, "fp32") == base
    assert encoder_fingerprint(encoder, spec.encoder, "bf16") != base
    other_config = validate_spec(toy_spec(encoder={"seed": 1})).encoder
    assert encoder_fingerprint(build_component("encoder", other_config), other_config, "fp32") != base
    with torch.no_grad():
        encoder.conv1.bias[0] += 1e-3
    assert encoder_fingerprint(encoder, spec.encoder, "fp32") != base


def test_a_torn_entry_is_recomputed(tmp_path):
    spec = validate_spec(toy_spec())
    encoder = build_component("encoder", spec.encoder).requires_grad_(False)
    cache = EncoderCache(tmp_path, encoder, spec.encoder, "fp32")
    features, lengths = torch.randn(2, 30, 8), torch.tensor([30, 21])
    samples = [{"key": "a", "source": "x.wav"}, {"key": "b", "source": "y.wav"}]
    with cache.attach(), cache.batch(samples):
        first, _ = encoder(features, lengths)
    next(iter(tmp_path.rglob("*.safetensors"))).write_bytes(b"torn")
    with cache.attach(), cache.batch(samples):
        again, out_lengths = encoder(features, lengths)
    assert cache.encoder_calls == 2 and cache.misses == 3
    torch.testing.assert_close(again, first)
    assert out_lengths.tolist() == encoder.output_lengths(lengths).tolist()
    assert "forward" not in vars(encoder), "detaching restores the encoder's own forward"


def test_a_trainable_encoder_cannot_be_cached(tmp_path):
    spec = validate_spec(toy_spec())
    encoder = build_component("encoder", spec.encoder)  # fresh: its parameters require grad
    with pytest.raises(ValueError, match="caches a frozen encoder's outputs, but encoder parameters train"):
        EncoderCache(tmp_path, encoder, spec.encoder, "fp32")
