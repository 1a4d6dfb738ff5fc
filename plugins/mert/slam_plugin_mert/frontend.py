"""MERT's conv feature extractor run on a padded batch without letting the padding in.

The first conv layer of a ``feat_extract_norm: group`` model (every released MERT-v1) is followed by a
``GroupNorm`` with one group per channel: it normalises each channel over the whole time axis, so in a
padded batch the padding would shift every frame of the shorter clips. Here that norm takes its
statistics over each clip's valid frames only; the later layers are plain strided convolutions whose
valid outputs see valid inputs only. A clip thus gives the same frames alone as in any batch.
"""

from __future__ import annotations

import torch
from torch import nn

from slam_plugin_mert.lengths import conv_output_lengths


def masked_group_norm(x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``norm(x[b, :, :lengths[b]])`` for every ``b`` at once; ``x`` is ``[B, C, T]``, frames past a length
    are normalised with that clip's statistics (and are meaningless)."""
    batch, channels, frames = x.shape
    groups = norm.num_groups
    compute = torch.promote_types(x.dtype, torch.float32)
    grouped = x.to(compute).reshape(batch, groups, channels // groups, frames)
    valid = (torch.arange(frames, device=x.device)[None, :] < lengths[:, None]).to(compute)[:, None, None, :]
    count = valid.sum(dim=(2, 3), keepdim=True) * (channels // groups)
    mean = (grouped * valid).sum(dim=(2, 3), keepdim=True) / count
    variance = ((grouped - mean).square() * valid).sum(dim=(2, 3), keepdim=True) / count
    normed = ((grouped - mean) * torch.rsqrt(variance + norm.eps)).reshape(batch, channels, frames)
    if norm.affine:
        normed = normed * norm.weight.to(compute)[None, :, None] + norm.bias.to(compute)[None, :, None]
    return normed.to(x.dtype)


def extract_features(feature_encoder: nn.Module, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Conv features ``[B, C, T]`` of a padded ``waveform [B, N]`` (HF ``HubertFeatureEncoder`` layers)."""
    hidden = waveform[:, None, :]
    first, *rest = feature_encoder.conv_layers
    norm = getattr(first, "layer_norm", None)
    if isinstance(norm, nn.GroupNorm):
        hidden = first.conv(hidden)
        frames = conv_output_lengths(lengths, first.conv.kernel_size, first.conv.stride)
        hidden = first.activation(masked_group_norm(hidden, frames, norm))
    else:  # per-frame LayerNorm (or none): nothing crosses clips
        hidden = first(hidden)
    for layer in rest:
        hidden = layer(hidden)
    return hidden
