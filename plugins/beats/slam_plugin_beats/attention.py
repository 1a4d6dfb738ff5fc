"""Self-attention with a bucketed relative position bias, optionally gated by the query (BEATs / WavLM)."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F


@functools.lru_cache(maxsize=8)
def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """Bucket index ``[length, length]`` of key position minus query position (T5-style, bidirectional).

    Half of the buckets hold positive offsets; within a half, distances below a quarter of
    ``num_buckets`` get a bucket each and larger ones share log-spaced buckets up to ``max_distance``.
    """
    positions = torch.arange(length)
    offset = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    exact = half // 2
    distance = offset.abs()
    scaled = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact) * (half - exact)
    far = (exact + scaled.to(torch.long)).clamp(max=half - 1)
    return (offset > 0).to(torch.long) * half + torch.where(distance < exact, distance, far)


class RelativePositionBias(nn.Module):
    """Learned per-head bias for each relative-position bucket: ``bias(length) -> [heads, length, length]``."""

    def __init__(self, num_buckets: int, max_distance: int, heads: int):
        super().__init__()
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.weight = nn.Parameter(torch.randn(num_buckets, heads))

    def forward(self, length: int) -> torch.Tensor:
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance).to(self.weight.device)
        return F.embedding(buckets, self.weight).permute(2, 0, 1)


class RelPosSelfAttention(nn.Module):
    """Multi-head self-attention adding a (gated) relative position bias to the attention logits.

    With ``gated``, each head scales the shared bias by a query-dependent gate
    ``a · (b · grep_a − 1) + 2`` where ``a, b = sigmoid(sum of 4 outputs each of grep_linear(q))``.
    """

    def __init__(self, dim: int, heads: int, position_bias: RelativePositionBias | None, gated: bool):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        # One table shared by every layer; each layer registers it, as in the released state dicts.
        self.relative_attention_bias = position_bias
        self.gated = gated
        if gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def gate(self, q: torch.Tensor) -> torch.Tensor:
        """Per-query gate ``[B, heads, L, 1]`` of the relative position bias."""
        batch, heads, length, _ = q.shape
        a, b = torch.sigmoid(self.grep_linear(q).view(batch, heads, length, 2, 4).sum(-1)).chunk(2, dim=-1)
        return a * (b * self.grep_a - 1.0) + 2.0

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``x [B, L, D]``; ``key_mask [B, 1, 1, L]`` additive (−inf at padding); ``bias [heads, L, L]`` or None."""
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(x)), self._split(self.v_proj(x))
        logits_bias = key_mask
        if bias is not None:
            logits_bias = logits_bias + (self.gate(q) * bias if self.gated else bias)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=logits_bias.to(q.dtype))
        return self.out_proj(attended.transpose(1, 2).reshape(x.shape))
