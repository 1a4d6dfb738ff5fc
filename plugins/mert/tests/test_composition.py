"""mert inside SlamModel: exact modality lengths, and what freezing does to a learned layer mix."""

from __future__ import annotations

import pytest
import torch
from mert_testing import TINY

from slam_core.model import build_model
from slam_core.spec import validate_spec

pytest.importorskip("slam_plugin_linear_projector")


def model_and_batch(freeze_encoder: bool):
    spec = validate_spec(
        {
            "encoder": {"type": "mert", "shape": TINY, "layer": "weighted"},
            "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 16},
            "llm": {
                "type": "toy-llm",
                "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64},
            },
            "task": {"type": "asr"},
            "train": {"freeze_encoder": freeze_encoder},
        }
    )
    torch.manual_seed(0)
    model = build_model(spec)
    generator = torch.Generator().manual_seed(0)
    waveforms = [model.encoder.preprocess(0.1 * torch.randn(n, generator=generator)) for n in (7000, 3000)]
    lengths = torch.tensor([w.shape[0] for w in waveforms])
    features = torch.nn.utils.rnn.pad_sequence(waveforms, batch_first=True)
    samples = [{"key": "a", "target": "la"}, {"key": "b", "target": "do re"}]
    return model, features, lengths, model.text_inputs(samples)


def test_modality_positions_follow_the_conv_arithmetic():
    model, features, lengths, text = model_and_batch(freeze_encoder=True)
    output = model(features, lengths, text)
    frames = [(n - 400) // 320 + 1 for n in lengths.tolist()]  # 22 and 9 frames at 75 Hz
    assert model.modality_lengths(lengths).tolist() == [f // 2 for f in frames]
    assert output.layout.modality_mask.sum(dim=1).tolist() == [f // 2 for f in frames]
    assert torch.isfinite(output.loss)


@pytest.mark.parametrize("freeze_encoder", [True, False])
def test_layer_mix_trains_with_a_frozen_or_unfrozen_encoder(freeze_encoder):
    model, features, lengths, text = model_and_batch(freeze_encoder)
    model.train()
    model(features, lengths, text).loss.backward()
    weights = model.encoder.mix.weights
    assert weights.requires_grad
    assert weights.grad is not None and bool(weights.grad.abs().sum() > 0)
    backbone = [p for name, p in model.encoder.named_parameters() if not name.startswith("mix.")]
    assert all(p.requires_grad is not freeze_encoder for p in backbone)
    assert all((p.grad is None) is freeze_encoder for p in backbone)
    assert not model.encoder.model.training if freeze_encoder else model.encoder.model.training
