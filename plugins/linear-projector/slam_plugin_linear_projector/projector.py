"""SLAM-LLM's two downsampling projectors: frame stacking + MLP, and a strided Conv1d + MLP."""

from __future__ import annotations

import torch
from torch import nn

from slam_core.components import Projector
from slam_plugin_linear_projector.plugin import Conv1dProjectorConfig, LinearProjectorConfig

#: ``activation`` of :class:`LinearProjectorConfig` → the module (GELU: the exact, erf form).
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class LinearProjector(Projector):
    """Drops the last ``T mod k`` frames, concatenates every ``k`` frames and applies an MLP
    (``activation`` between its layers, biases unless ``bias: false``).

    ``[B, T, D] → [B, T // k, D_llm]``; a sample of ``n`` frames yields ``n // k`` positions.
    """

    def __init__(self, config: LinearProjectorConfig, input_dim: int, output_dim: int):
        super().__init__()
        self.config = config
        self.k = config.k
        self.input_dim, self.output_dim = input_dim, output_dim
        self.linear1 = nn.Linear(config.k * input_dim, config.hidden_dim, bias=config.bias)
        self.activation = ACTIVATIONS[config.activation]()
        self.linear2 = nn.Linear(config.hidden_dim, output_dim, bias=config.bias)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.k, rounding_mode="floor")

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_lengths, positions = _positions(self, hidden, lengths)
        batch, _, dim = hidden.shape
        stacked = hidden[:, : positions * self.k].reshape(batch, positions, self.k * dim)
        embeds = self.linear2(self.activation(self.linear1(stacked)))
        return _zero_padding(embeds, out_lengths), out_lengths


class Conv1dProjector(Projector):
    """A Conv1d with kernel = stride = ``k`` over the time axis, then ReLU and an MLP with ReLU.

    Same lengths as :class:`LinearProjector` (``n // k`` positions); the convolution mixes the ``k``
    frames of a position into ``D`` channels before the MLP. Parameter names (``conv1d``,
    ``linear1``, ``linear2``) are those of SLAM-LLM's ``cov1d-linear`` projector, so its trained
    projector weights load as they are.
    """

    def __init__(self, config: Conv1dProjectorConfig, input_dim: int, output_dim: int):
        super().__init__()
        self.config = config
        self.k = config.k
        self.input_dim, self.output_dim = input_dim, output_dim
        self.conv1d = nn.Conv1d(input_dim, input_dim, kernel_size=config.k, stride=config.k)
        self.linear1 = nn.Linear(input_dim, config.hidden_dim)
        self.linear2 = nn.Linear(config.hidden_dim, output_dim)
        self.relu = nn.ReLU()

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.k, rounding_mode="floor")

    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out_lengths, positions = _positions(self, hidden, lengths)
        if positions == 0:
            return hidden.new_zeros(hidden.shape[0], 0, self.output_dim), out_lengths
        mixed = self.conv1d(hidden[:, : positions * self.k].transpose(1, 2)).transpose(1, 2)
        embeds = self.linear2(self.relu(self.linear1(self.relu(mixed))))
        return _zero_padding(embeds, out_lengths), out_lengths


def _positions(projector: Projector, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Each sample's output length and the batch's longest, after checking the frame width."""
    if hidden.shape[-1] != projector.input_dim:
        raise ValueError(f"{projector.config.type} expects {projector.input_dim}-dim frames, got {hidden.shape[-1]}")
    out_lengths = projector.output_lengths(lengths)
    return out_lengths, int(out_lengths.max()) if out_lengths.numel() else 0


def _zero_padding(embeds: torch.Tensor, out_lengths: torch.Tensor) -> torch.Tensor:
    padding = torch.arange(embeds.shape[1], device=embeds.device)[None, :] >= out_lengths.to(embeds.device)[:, None]
    return embeds.masked_fill(padding[..., None], 0.0)
