"""conv1d-projector: the conformance kit, a per-position reference, SLAM-LLM's parameter names and count."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from slam_plugin_linear_projector.plugin import Conv1dProjectorConfig
from slam_plugin_linear_projector.projector import Conv1dProjector

from slam_core.testing import ProjectorConformance


class TestConv1dProjectorConformance(ProjectorConformance):
    component_name = "conv1d-projector"
    config = {"k": 3, "hidden_dim": 16}


def reference_projection(projector: Conv1dProjector, frames: torch.Tensor) -> torch.Tensor:
    """Each position: the kernel contracted with its k frames by hand, then ReLU, MLP."""
    k, weight, bias = projector.k, projector.conv1d.weight, projector.conv1d.bias  # weight [D_out, D_in, k]
    rows = []
    for position in range(frames.shape[0] // k):
        window = frames[position * k : (position + 1) * k]  # [k, D_in]
        rows.append(torch.einsum("oik,ki->o", weight, window) + bias)
    if not rows:
        return frames.new_zeros(0, projector.output_dim)
    mixed = torch.relu(torch.stack(rows))
    return projector.linear2(torch.relu(projector.linear1(mixed)))


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 6),
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    dim=st.integers(1, 6),
)
def test_each_position_mixes_its_k_frames(k, lengths, dim):
    torch.manual_seed(0)
    projector = Conv1dProjector(Conv1dProjectorConfig(k=k, hidden_dim=8), input_dim=dim, output_dim=5).eval()
    hidden = torch.randn(len(lengths), max(max(lengths), 1), dim)
    with torch.no_grad():
        output, out_lengths = projector(hidden, torch.tensor(lengths))
        assert out_lengths.tolist() == [n // k for n in lengths]
        assert output.shape == (len(lengths), max(n // k for n in lengths), 5)
        for row, n in enumerate(lengths):
            expected = reference_projection(projector, hidden[row, :n])
            torch.testing.assert_close(output[row, : n // k], expected, atol=1e-5, rtol=1e-5)
            assert not output[row, n // k :].any()


def test_parameter_names_and_count_are_slam_llms_cov1d_linear():
    projector = Conv1dProjector(Conv1dProjectorConfig(), input_dim=1024, output_dim=4096)
    names = {name: tuple(p.shape) for name, p in projector.named_parameters()}
    assert names == {
        "conv1d.weight": (1024, 1024, 5),
        "conv1d.bias": (1024,),
        "linear1.weight": (2048, 1024),
        "linear1.bias": (2048,),
        "linear2.weight": (4096, 2048),
        "linear2.bias": (4096,),
    }
    # AV-HuBERT Large (1024) into Vicuna-7B (4096): with LoRA's 33,554,432 the paper's 49M trainable
    assert sum(p.numel() for p in projector.parameters()) == 15_735_808


def test_wrong_input_width_is_named():
    projector = Conv1dProjector(Conv1dProjectorConfig(k=2, hidden_dim=4), input_dim=6, output_dim=3)
    with pytest.raises(ValueError, match="conv1d-projector expects 6-dim frames, got 7"):
        projector(torch.zeros(1, 4, 7), torch.tensor([4]))
