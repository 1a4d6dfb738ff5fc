"""The linear frame-stacking projector."""

from __future__ import annotations

import torch
from torch import nn

from slam_core.components import Projector
from slam_plugin_linear_projector.plugin import LinearProjectorConfig


class LinearProjector(Projector):
    """Drops the last ``T mod k`` frames, concatenates every ``k`` frames and applies an MLP.

    ``[B, T, D] → [B, T // k, D_llm]``; a sample of ``n`` frames yields ``n // k`` positions.
    """

    def __init__(self, config: LinearProjectorConfig, input_dim: int, output_dim: int):
        super().__init__()
        self.config = config
        self.k = config.k
        self.input_dim, self.output_dim = input_dim, output_dim
        self.linear1 = nn.Linear(config.k * input_dim, config.hidden_dim)
        self.relu = nn.ReLU()
        self.linear2 = nn.Linear(config.hidden_dim, output_dim)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.k, rounding_mode="floor")

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_lengths = self.output_lengths(lengths)
        positions = int(out_lengths.max()) if out_lengths.numel() else 0
        batch, _, dim = hidden.shape
        if dim != self.input_dim:
            raise ValueError(f"linear-projector expects {self.input_dim}-dim frames, got {dim}")
        stacked = hidden[:, : positions * self.k].reshape(batch, positions, self.k * dim)
        embeds = self.linear2(self.relu(self.linear1(stacked)))
        padding = torch.arange(positions, device=hidden.device)[None, :] >= out_lengths.to(hidden.device)[:, None]
        return embeds.masked_fill(padding[..., None], 0.0), out_lengths
