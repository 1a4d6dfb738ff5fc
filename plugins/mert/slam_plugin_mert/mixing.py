"""Turning MERT's hidden states into one sequence: pick one layer, or a learned softmax-weighted sum."""

from __future__ import annotations

import torch
from torch import nn


class LayerSelect(nn.Module):
    """Returns the last state it is given (the encoder is truncated to end at the chosen layer)."""

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        return states[-1]


class WeightedLayerSum(nn.Module):
    """``sum_i softmax(w)_i * states[i]``; ``w`` starts at zero, i.e. the mean of all states."""

    def __init__(self, num_states: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        if len(states) != self.weights.numel():
            raise ValueError(f"expected {self.weights.numel()} hidden states, got {len(states)}")
        mix = torch.softmax(self.weights.float(), dim=0).to(states[0].dtype)
        return sum((weight * state for weight, state in zip(mix, states, strict=True)), torch.zeros_like(states[0]))
