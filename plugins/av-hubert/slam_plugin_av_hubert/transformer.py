"""The transformer of AV-HuBERT: fairseq's wav2vec 2.0 ``TransformerEncoder``.

A weight-normed grouped convolution adds a relative position signal (``pos_conv``: weight ``g * v / |v|``
with the norm over each kernel tap, as ``nn.utils.weight_norm(dim=2)``; the extra frame of an even
kernel is dropped; GELU), then pre-LN (``layer_norm_first``, every AV-HuBERT release) or post-LN
layers of self-attention and a GELU feed-forward. Parameter names follow fairseq's
(``pos_conv.0.weight_g``, ``layers.N.self_attn.q_proj``, ``layers.N.final_layer_norm``, ...).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from slam_core.layers import DropLastFrame, WeightNormConv1d
from slam_plugin_av_hubert.plugin import AVHubertArchitecture


def _gelu_fp32(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x.float()).type_as(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with fairseq's projections (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """``x [B, L, D]``, ``key_mask [B, 1, 1, L]`` (True at real frames) -> ``[B, L, D]``."""
        batch, length, dim = x.shape

        def heads(projection: nn.Linear) -> torch.Tensor:
            return projection(x).view(batch, length, self.heads, dim // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            heads(self.q_proj),
            heads(self.k_proj),
            heads(self.v_proj),
            attn_mask=key_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(attended.transpose(1, 2).reshape(batch, length, dim))


class EncoderLayer(nn.Module):
    """Self-attention and a GELU feed-forward, each with a residual; LayerNorm before (pre-LN) or after."""

    def __init__(
        self, shape: AVHubertArchitecture, dropout: float, attention_dropout: float, activation_dropout: float
    ):
        super().__init__()
        dim = shape.encoder_embed_dim
        self.self_attn = SelfAttention(dim, shape.encoder_attention_heads, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, shape.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(shape.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.pre_ln = shape.layer_norm_first
        self.dropout, self.activation_dropout = nn.Dropout(dropout), nn.Dropout(activation_dropout)

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_dropout(_gelu_fp32(self.fc1(x)))))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        if self.pre_ln:
            x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), key_mask))
            return x + self._feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x + self.dropout(self.self_attn(x, key_mask)))
        return self.final_layer_norm(x + self._feed_forward(x))


class TransformerEncoder(nn.Module):
    """Position convolution and ``num_layers`` layers; a pre-LN model ends with ``layer_norm`` when
    ``final_norm`` (the full model's output), a post-LN model applies it before the first layer."""

    def __init__(
        self,
        shape: AVHubertArchitecture,
        num_layers: int,
        *,
        final_norm: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
    ):
        super().__init__()
        dim = shape.encoder_embed_dim
        trim = [DropLastFrame()] if shape.conv_pos % 2 == 0 else []
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, shape.conv_pos, shape.conv_pos_groups, init="fairseq"), *trim, nn.GELU()
        )
        self.layers = nn.ModuleList(
            EncoderLayer(shape, dropout, attention_dropout, activation_dropout) for _ in range(num_layers)
        )
        self.pre_ln = shape.layer_norm_first
        self.layer_norm = nn.LayerNorm(dim) if final_norm or not self.pre_ln else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``x [B, L, D]``, ``valid [B, L]`` (True at real frames) -> ``[B, L, D]``."""
        x = x.masked_fill(~valid[..., None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.pre_ln:
            x = self.layer_norm(x)
        x = self.dropout(x)
        key_mask = valid[:, None, None, :]
        for layer in self.layers:
            x = layer(x, key_mask)
        if self.pre_ln and self.layer_norm is not None:
            x = self.layer_norm(x)
        return x
