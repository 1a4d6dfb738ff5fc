"""The example projector: mean pooling over windows of ``k`` frames, then one Linear."""

from __future__ import annotations

import torch
from torch import nn

from slam_core.components import Projector
from slam_plugin_example.plugin import ExampleProjectorConfig


class ExampleProjector(Projector):
    """``[B, T, D] → [B, ceil(T / k), D_llm]``.

    A sample of ``n`` frames yields ``ceil(n / k)`` positions. Position ``j`` is the mean of
    frames ``j*k .. min((j+1)*k, n) - 1``: a partial last window is averaged over its real
    frames only, and padded frames never enter any mean. Positions past a sample's length are
    zero.
    """

    def __init__(self, config: ExampleProjectorConfig, input_dim: int, output_dim: int):
        super().__init__()
        self.config = config
        self.k = config.k
        self.input_dim, self.output_dim = input_dim, output_dim
        self.linear = nn.Linear(input_dim, output_dim, bias=config.bias)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + self.k - 1, self.k, rounding_mode="floor")

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, dim = hidden.shape
        if dim != self.input_dim:
            raise ValueError(f"example-projector expects {self.input_dim}-dim frames, got {dim}")
        if lengths.numel() and int(lengths.max()) > frames:
            raise ValueError(f"lengths {lengths.tolist()} exceed the {frames} frames given")
        out_lengths = self.output_lengths(lengths)
        positions = int(out_lengths.max()) if out_lengths.numel() else 0
        width = positions * self.k
        # crop, or zero-pad the time axis, to a whole number of windows
        hidden = nn.functional.pad(hidden[:, :width], (0, 0, 0, max(width - frames, 0)))
        steps = torch.arange(width, device=hidden.device)
        valid = steps[None, :] < lengths.to(hidden.device)[:, None]  # [B, width]
        summed = torch.where(valid[..., None], hidden, 0).reshape(batch, positions, self.k, dim).sum(2)
        counts = valid.reshape(batch, positions, self.k).sum(2).clamp(min=1).to(hidden.dtype)
        embeds = self.linear(summed / counts[..., None])
        real = torch.arange(positions, device=hidden.device)[None, :] < out_lengths.to(hidden.device)[:, None]
        return torch.where(real[..., None], embeds, 0), out_lengths
