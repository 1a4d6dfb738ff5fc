"""example-projector and example-encoder against hand-written references (the kit: test_conformance.py)."""

from __future__ import annotations

import pytest
import torch
from slam_plugin_example.encoder import ExampleEncoder
from slam_plugin_example.plugin import ExampleEncoderConfig, ExampleProjectorConfig
from slam_plugin_example.projector import ExampleProjector


def reference(projector: ExampleProjector, frames: torch.Tensor) -> torch.Tensor:
    """One sample's ``[n, D]`` real frames → ``[ceil(n / k), D_llm]``, one window at a time."""
    k = projector.k
    rows = [frames[start : start + k].mean(0) for start in range(0, frames.shape[0], k)]
    if not rows:
        return frames.new_zeros(0, projector.output_dim)
    return projector.linear(torch.stack(rows))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_matches_the_hand_reference_and_zeroes_padding(k):
    torch.manual_seed(0)
    projector = ExampleProjector(ExampleProjectorConfig(k=k), input_dim=4, output_dim=6).eval()
    lengths = torch.tensor([7, 0, 3, 10])
    hidden = torch.randn(len(lengths), 10, 4)
    for row, n in enumerate(lengths.tolist()):
        hidden[row, n:] = float("nan")  # padding must never be read, even when it is not finite
    with torch.no_grad():
        output, out_lengths = projector(hidden, lengths)
        assert out_lengths.tolist() == [-(-n // k) for n in lengths.tolist()]
        assert output.shape == (4, int(out_lengths.max()), 6)
        for row, n in enumerate(lengths.tolist()):
            m = int(out_lengths[row])
            torch.testing.assert_close(output[row, :m], reference(projector, hidden[row, :n]))
            assert output[row, m:].eq(0).all(), "positions past the length must be zero"


def test_parameter_count():
    projector = ExampleProjector(ExampleProjectorConfig(), input_dim=1280, output_dim=4096)
    assert sum(p.numel() for p in projector.parameters()) == 1280 * 4096 + 4096


@pytest.mark.parametrize("bad", [{"k": 0}, {"k": "four"}, {"stride": 2}])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        ExampleProjectorConfig.model_validate({"type": "example-projector", **bad})


@pytest.mark.parametrize(("n", "frames"), [(400, 1), (719, 1), (720, 2), (1601, 4), (16000, 49)])
def test_encoder_frames_follow_the_conv_arithmetic(n, frames):
    """400 samples (the receptive field) give one frame, 720 the second, one second 49."""
    by_hand = n
    for kernel, stride in [(10, 5)] + [(3, 2)] * 4 + [(2, 2)] * 2:
        by_hand = (by_hand - kernel) // stride + 1
    encoder = ExampleEncoder(ExampleEncoderConfig(shape={"conv_channels": 4, "hidden_size": 6})).eval()
    with torch.no_grad():
        hidden, lengths = encoder(torch.randn(1, n), torch.tensor([n]))
    assert by_hand == frames and lengths.tolist() == [frames] and hidden.shape == (1, frames, 6)


def test_encoder_parameter_count():
    encoder = ExampleEncoder(ExampleEncoderConfig())
    convs = (10 * 1 * 32 + 32) + 4 * (3 * 32 * 32 + 32) + 2 * (2 * 32 * 32 + 32)
    assert sum(p.numel() for p in encoder.parameters()) == convs + 2 * 32 + (32 * 64 + 64)
