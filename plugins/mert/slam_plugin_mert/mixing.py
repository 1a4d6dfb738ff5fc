"""Turning MERT's hidden states into one sequence: pick one layer, or a learned softmax-weighted sum."""

from __future__ import annotations

import torch
from torch import nn

from slam_core.layers import WeightedLayerSum

__all__ = ["LayerSelect", "WeightedLayerSum"]


class LayerSelect(nn.Module):
    """Returns the last state it is given (the encoder is truncated to end at the chosen layer)."""

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        return states[-1]
