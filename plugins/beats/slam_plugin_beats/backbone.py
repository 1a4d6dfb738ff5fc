"""The BEATs transformer: convolutional positional embedding, then post-LN (DeepNorm) or pre-LN layers.

Module and parameter names follow the released checkpoints (``encoder.pos_conv.0.weight_g``,
``encoder.layers.N.self_attn.grep_a``, ...), so their state dicts load with ``strict=True``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from slam_core.layers import DropLastFrame, WeightNormConv1d
from slam_plugin_beats.attention import RelativePositionBias, RelPosSelfAttention
from slam_plugin_beats.plugin import BeatsArchitecture


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by ``scale`` in the backward pass."""
    return x if scale == 1.0 else _ScaleGradient.apply(x, scale)


def _gelu_fp32(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x.float()).type_as(x)


ACTIVATIONS = {
    "gelu": _gelu_fp32,
    "gelu_accurate": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "tanh": torch.tanh,
    "linear": lambda x: x,
}


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward; post-LN with residuals scaled by ``deep_norm_alpha``, or pre-LN."""

    def __init__(self, shape: BeatsArchitecture, position_bias: RelativePositionBias | None):
        super().__init__()
        dim = shape.encoder_embed_dim
        self.self_attn = RelPosSelfAttention(dim, shape.encoder_attention_heads, position_bias, shape.gru_rel_pos)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, shape.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(shape.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.activation = ACTIVATIONS[shape.activation_fn]
        self.layer_norm_first = shape.layer_norm_first
        self.deep_norm_alpha = math.pow(2 * shape.encoder_layers, 0.25) if shape.deep_norm else 1.0

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation(self.fc1(x)))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.layer_norm_first:
            x = x + self.self_attn(self.self_attn_layer_norm(x), key_mask, bias)
            return x + self._feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.deep_norm_alpha + self.self_attn(x, key_mask, bias))
        return self.final_layer_norm(x * self.deep_norm_alpha + self._feed_forward(x))


class TransformerEncoder(nn.Module):
    """Positional convolution, layer norm (post-LN models) and the layers; padding never reaches a valid frame."""

    def __init__(self, shape: BeatsArchitecture):
        super().__init__()
        dim = shape.encoder_embed_dim
        trim = [DropLastFrame()] if shape.conv_pos % 2 == 0 else []
        self.pos_conv = nn.Sequential(WeightNormConv1d(dim, shape.conv_pos, shape.conv_pos_groups), *trim, nn.GELU())
        position_bias = (
            RelativePositionBias(shape.num_buckets, shape.max_distance, shape.encoder_attention_heads)
            if shape.relative_position_embedding
            else None
        )
        self.layers = nn.ModuleList(EncoderLayer(shape, position_bias) for _ in range(shape.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = shape.layer_norm_first
        self.gradient_decay = shape.layer_wise_gradient_decay_ratio

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``x [B, L, D]``, ``valid [B, L]`` (True at real tokens) -> ``[B, L, D]``."""
        x = x.masked_fill(~valid[..., None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        key_mask = torch.zeros(valid.shape, dtype=x.dtype, device=x.device).masked_fill(~valid, float("-inf"))
        key_mask = key_mask[:, None, None, :]
        table = self.layers[0].self_attn.relative_attention_bias
        bias = table(x.shape[1]) if table is not None else None
        for layer in self.layers:
            x = layer(scale_gradient(x, self.gradient_decay), key_mask, bias)
        return self.layer_norm(x) if self.layer_norm_first else x
