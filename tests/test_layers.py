"""slam_core.layers: the weight-normalised positional convolution equals torch's weight_norm over dim 2."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slam_core.layers import DropLastFrame, WeightNormConv1d


@pytest.mark.parametrize("init", ["torch", "fairseq"])
def test_weight_norm_conv_equals_torchs_weight_norm_per_tap(init):
    torch.manual_seed(0)
    ours = WeightNormConv1d(8, 4, groups=2, init=init)
    with torch.no_grad():
        ours.weight_g.mul_(torch.rand_like(ours.weight_g) + 0.5)  # a trained gain, not the initial norm
    reference = nn.Conv1d(8, 8, 4, padding=2, groups=2)
    reference = nn.utils.parametrizations.weight_norm(reference, dim=2)
    with torch.no_grad():
        reference.parametrizations.weight.original0.copy_(ours.weight_g)
        reference.parametrizations.weight.original1.copy_(ours.weight_v)
        reference.bias.copy_(ours.bias)
    x = torch.randn(3, 8, 11)
    torch.testing.assert_close(ours(x), reference(x))
    assert DropLastFrame()(ours(x)).shape == (3, 8, 11)  # an even kernel adds one frame


def test_fairseq_init_draws_from_its_normal_and_zero_bias():
    torch.manual_seed(0)
    conv = WeightNormConv1d(64, 16, groups=4, init="fairseq")
    assert torch.count_nonzero(conv.bias) == 0
    assert abs(float(conv.weight_v.detach().std()) - (4.0 / (16 * 64)) ** 0.5) < 0.01
    with pytest.raises(ValueError, match="init must be"):
        WeightNormConv1d(4, 2, groups=1, init="xavier")
