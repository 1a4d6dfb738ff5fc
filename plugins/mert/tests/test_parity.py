"""Parity with upstream MERT (modeling_MERT.py) on the tiny released-layout fixtures.

The references were computed by the upstream model on each clip alone (fixtures/README.md); here the
clips go through our encoder as one padded batch. Tolerance: 1e-4 (the brief); observed ~1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from slam_plugin_mert.encoder import MERTEncoder
from slam_plugin_mert.plugin import MERTEncoderConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHECKPOINTS = ("mert-tiny-95m", "mert-tiny-330m")
ATOL = 1e-4


def encoder_for(path: Path, **settings) -> MERTEncoder:
    return MERTEncoder(MERTEncoderConfig(path=str(path), **settings)).eval()


def padded_batch(encoder: MERTEncoder, clips: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    features = [encoder.preprocess(clip) for clip in clips]
    lengths = torch.tensor([f.shape[0] for f in features])
    return torch.nn.utils.rnn.pad_sequence(features, batch_first=True), lengths


def assert_matches(output: torch.Tensor, out_lengths: torch.Tensor, expected: list[torch.Tensor]) -> None:
    for index, states in enumerate(expected):
        frames = states.shape[-2]
        assert int(out_lengths[index]) == frames, "frame count differs from upstream"
        torch.testing.assert_close(output[index, :frames], states, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_every_hidden_state_matches_upstream(name, reference, clips):
    encoder = encoder_for(FIXTURES / name, layer="weighted")
    with torch.no_grad():
        states, out_lengths = encoder.hidden_states(*padded_batch(encoder, clips))
    expected = [reference[f"{name}.{i}"] for i in range(len(clips))]
    assert len(states) == expected[0].shape[0] == encoder.model.config.num_hidden_layers + 1
    for layer, state in enumerate(states):
        assert_matches(state, out_lengths, [e[layer] for e in expected])


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_chosen_layer_output_matches_upstream(name, reference, clips):
    """Each ``layer: k`` (a truncated model), and ``-1``, returns upstream's state ``k``, zero past the end."""
    num_states = reference[f"{name}.0"].shape[0]
    for layer in [*range(num_states), -1]:
        encoder = encoder_for(FIXTURES / name, layer=layer)
        assert len(encoder.model.encoder.layers) == layer % num_states
        with torch.no_grad():
            output, out_lengths = encoder(*padded_batch(encoder, clips))
        assert_matches(output, out_lengths, [reference[f"{name}.{i}"][layer] for i in range(len(clips))])
        for index, frames in enumerate(out_lengths.tolist()):
            assert not output[index, frames:].any(), "frames past a clip's length must be zero"


def test_weighted_sum_uses_softmax_of_the_layer_weights(reference, clips):
    name = "mert-tiny-330m"
    encoder = encoder_for(FIXTURES / name, layer="weighted")
    with torch.no_grad():
        encoder.mix.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
        output, out_lengths = encoder(*padded_batch(encoder, clips))
    mix = torch.softmax(torch.tensor([0.5, -1.0, 2.0]), dim=0)
    expected = [torch.einsum("l,ltd->td", mix, reference[f"{name}.{i}"]) for i in range(len(clips))]
    assert_matches(output, out_lengths, expected)


def test_safetensors_checkpoint_loads_the_same(checkpoint_copy, reference, clips):
    """The same weights as ``model.safetensors`` (the format newer hub revisions use) load identically."""
    directory = checkpoint_copy("mert-tiny-95m")
    state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    (directory / "pytorch_model.bin").unlink()
    save_file({k: v.contiguous() for k, v in state.items()}, directory / "model.safetensors", metadata={"format": "pt"})
    encoder = encoder_for(directory, layer=-1)
    with torch.no_grad():
        output, out_lengths = encoder(*padded_batch(encoder, clips))
    assert_matches(output, out_lengths, [reference[f"mert-tiny-95m.{i}"][-1] for i in range(len(clips))])


def test_normalize_follows_preprocessor_config_unless_set():
    for name in CHECKPOINTS:
        declared = json.loads((FIXTURES / name / "preprocessor_config.json").read_text())["do_normalize"]
        assert encoder_for(FIXTURES / name).preprocessor().normalize is declared
        assert encoder_for(FIXTURES / name, normalize=not declared).preprocessor().normalize is (not declared)


def test_bf16_stays_close_to_upstream(reference, clips):
    encoder = encoder_for(FIXTURES / "mert-tiny-95m", dtype="bf16")
    assert encoder.model.feature_projection.projection.weight.dtype == torch.bfloat16
    with torch.no_grad():
        output, _ = encoder(*padded_batch(encoder, clips))
    assert output.dtype == torch.bfloat16
    expected = [reference[f"mert-tiny-95m.{i}"][-1] for i in range(len(clips))]
    for index, states in enumerate(expected):
        torch.testing.assert_close(output[index, : states.shape[0]].float(), states, atol=0.1, rtol=0.05)
