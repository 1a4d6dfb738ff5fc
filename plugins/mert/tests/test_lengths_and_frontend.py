"""Conv-stack length arithmetic, and the padding-free group norm of the conv front end."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from slam_plugin_mert.frontend import extract_features, masked_group_norm
from slam_plugin_mert.lengths import conv_output_lengths, receptive_field, total_stride
from slam_plugin_mert.presets import PRESETS
from torch import nn

KERNELS, STRIDES = PRESETS["95m"]["conv_kernel"], PRESETS["95m"]["conv_stride"]


def window_count(samples: int, kernels, strides) -> int:
    """Frames by definition: a valid strided convolution has one output per window start that fits."""
    for kernel, stride in zip(kernels, strides, strict=True):
        samples = len(range(0, samples - kernel + 1, stride))
    return samples


def test_mert_conv_stack_constants():
    assert receptive_field(KERNELS, STRIDES) == 400
    assert total_stride(STRIDES) == 320
    assert PRESETS["95m"]["sample_rate"] / total_stride(STRIDES) == 75.0


@settings(max_examples=200, deadline=None)
@given(samples=st.integers(0, 200_000))
def test_lengths_equal_window_counts_and_the_closed_form(samples):
    got = int(conv_output_lengths(torch.tensor([samples]), KERNELS, STRIDES)[0])
    assert got == window_count(samples, KERNELS, STRIDES)
    assert got == (0 if samples < 400 else (samples - 400) // 320 + 1)


@settings(max_examples=100, deadline=None)
@given(
    layers=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 4)), min_size=1, max_size=4),
    samples=st.lists(st.integers(0, 2_000), min_size=1, max_size=5),
)
def test_lengths_of_any_stack_agree_with_transformers_and_window_counts(layers, samples):
    """Frames >= 1 exactly from the receptive field on; transformers' formula agrees where it is >= 0."""
    from transformers import HubertModel

    kernels, strides = [k for k, _ in layers], [s for _, s in layers]
    ours = conv_output_lengths(torch.tensor(samples), kernels, strides).tolist()
    assert ours == [window_count(n, kernels, strides) for n in samples]
    field = receptive_field(kernels, strides)
    assert all((n >= field) == (m >= 1) for n, m in zip(samples, ours, strict=True))
    model = SimpleNamespace(config=SimpleNamespace(conv_kernel=kernels, conv_stride=strides))
    theirs = HubertModel._get_feat_extract_output_lengths(model, torch.tensor(samples))
    assert ours == [max(int(m), 0) for m in theirs]


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(2, 40), min_size=1, max_size=4), groups=st.sampled_from([1, 2, 6]))
def test_masked_group_norm_equals_group_norm_on_each_clip_alone(lengths, groups):
    torch.manual_seed(0)
    norm = nn.GroupNorm(groups, 6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(len(lengths), 6, max(lengths)) * 3 + 1
    out = masked_group_norm(x, torch.tensor(lengths), norm)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(out[b, :, :n], norm(x[b : b + 1, :, :n])[0], atol=1e-5, rtol=1e-5)


def tiny_feature_encoder(norm: str) -> nn.Module:
    from transformers import HubertConfig
    from transformers.models.hubert.modeling_hubert import HubertFeatureEncoder

    torch.manual_seed(0)
    return HubertFeatureEncoder(HubertConfig(conv_dim=[8] * 7, feat_extract_norm=norm)).eval()


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_front_end_is_batch_invariant_where_the_plain_one_leaks(norm):
    feature_encoder = tiny_feature_encoder(norm)
    lengths = torch.tensor([4000, 1200])
    waveform = torch.randn(2, 4000)
    waveform[1, 1200:] = 0.0
    frames = int(conv_output_lengths(lengths[1:], KERNELS, STRIDES)[0])
    with torch.no_grad():
        alone = feature_encoder(waveform[1:, :1200])[0]
        ours = extract_features(feature_encoder, waveform, lengths)[1, :, :frames]
        plain = feature_encoder(waveform)[1, :, :frames]
    torch.testing.assert_close(ours, alone, atol=1e-5, rtol=1e-5)
    leak = ((plain - alone).abs().max() / alone.abs().max()).item()  # default-init convs shrink the scale
    assert (leak > 0.1) if norm == "group" else (leak < 1e-4), f"plain {norm}-norm front end: relative diff {leak}"
