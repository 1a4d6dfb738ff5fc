"""linear-projector: the conformance kit plus its own arithmetic."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from slam_plugin_linear_projector.plugin import LinearProjectorConfig
from slam_plugin_linear_projector.projector import LinearProjector

from slam_core.testing import ProjectorConformance


class TestLinearProjectorConformance(ProjectorConformance):
    component_name = "linear-projector"
    config = {"k": 3, "hidden_dim": 16}


def reference_projection(projector: LinearProjector, frames: torch.Tensor) -> torch.Tensor:
    """Stack k consecutive frames by hand, one output position at a time."""
    k = projector.k
    rows = [frames[i * k : (i + 1) * k].reshape(-1) for i in range(frames.shape[0] // k)]
    if not rows:
        return frames.new_zeros(0, projector.output_dim)
    stacked = torch.stack(rows)
    return projector.linear2(torch.relu(projector.linear1(stacked)))


def test_defaults_follow_slam_llm():
    config = LinearProjectorConfig()
    assert (config.k, config.hidden_dim) == (5, 2048)


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 6),
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    dim=st.integers(1, 6),
)
def test_stacks_k_frames_and_drops_the_remainder(k, lengths, dim):
    torch.manual_seed(0)
    projector = LinearProjector(LinearProjectorConfig(k=k, hidden_dim=8), input_dim=dim, output_dim=5).eval()
    lengths_t = torch.tensor(lengths)
    width = max(max(lengths), 1)
    hidden = torch.randn(len(lengths), width, dim)
    with torch.no_grad():
        output, out_lengths = projector(hidden, lengths_t)
        assert out_lengths.tolist() == [n // k for n in lengths]
        assert output.shape == (len(lengths), max(n // k for n in lengths), 5)
        for row, n in enumerate(lengths):
            expected = reference_projection(projector, hidden[row, :n])
            torch.testing.assert_close(output[row, : n // k], expected, atol=1e-5, rtol=1e-5)


def test_parameter_count_matches_the_formula():
    projector = LinearProjector(LinearProjectorConfig(), input_dim=1280, output_dim=4096)
    expected = (5 * 1280) * 2048 + 2048 + 2048 * 4096 + 4096
    assert sum(p.numel() for p in projector.parameters()) == expected


def test_wrong_input_width_is_named():
    projector = LinearProjector(LinearProjectorConfig(k=2, hidden_dim=4), input_dim=6, output_dim=3)
    with pytest.raises(ValueError, match="expects 6-dim frames, got 7"):
        projector(torch.zeros(1, 4, 7), torch.tensor([4]))


@pytest.mark.parametrize("bad", [{"k": 0}, {"hidden_dim": -1}, {"k": "five"}, {"stride": 2}])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        LinearProjectorConfig.model_validate({"type": "linear-projector", **bad})


@pytest.mark.parametrize("activation, reference", [("relu", torch.relu), ("gelu", torch.nn.functional.gelu)])
def test_activation_and_bias_options(activation, reference):
    torch.manual_seed(0)
    config = LinearProjectorConfig(k=2, hidden_dim=6, activation=activation, bias=False)
    projector = LinearProjector(config, input_dim=3, output_dim=4).eval()
    assert projector.linear1.bias is None and projector.linear2.bias is None
    assert sum(p.numel() for p in projector.parameters()) == 6 * 6 + 6 * 4
    hidden = torch.randn(1, 4, 3)
    with torch.no_grad():
        output, _ = projector(hidden, torch.tensor([4]))
        expected = hidden.reshape(1, 2, 6) @ projector.linear1.weight.T
        expected = reference(expected) @ projector.linear2.weight.T
    torch.testing.assert_close(output, expected)


def test_an_unknown_activation_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'relu' or 'gelu'"):
        LinearProjectorConfig(activation="tanh")
