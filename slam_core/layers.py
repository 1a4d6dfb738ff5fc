"""Small modules that several encoder plugins share, with the parameter names released checkpoints use.

- :class:`WeightNormConv1d`: the convolutional positional embedding of wav2vec 2.0-style
  transformers (HuBERT, AV-HuBERT, BEATs): a grouped Conv1d whose kernel is weight-normalised
  per kernel tap, keeping ``weight_g``/``weight_v`` as parameters so that fairseq checkpoints'
  ``pos_conv.0.weight_g``/``weight_v`` load as they are.
- :class:`DropLastFrame`: removes the extra frame that an even kernel with ``padding = kernel // 2``
  adds (fairseq's ``SamePad``).
- :class:`WeightedLayerSum`: a learned softmax-weighted sum of an encoder's hidden states (MERT's
  and the hf-audio encoders' ``layer: weighted``); its weights are the encoder's trainable head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class WeightNormConv1d(nn.Module):
    """Grouped ``Conv1d(channels, channels, kernel, padding=kernel // 2)``, kernel ``weight_g · weight_v / ‖weight_v‖``.

    The norm is taken over the output and input channels of each kernel tap (``dim=2`` weight
    norm). ``init="fairseq"`` draws ``weight_v`` from N(0, 4 / (kernel · channels)) as fairseq
    does; ``init="torch"`` uses ``nn.Conv1d``'s default.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int, init: str = "torch"):
        super().__init__()
        self.groups, self.padding = groups, kernel_size // 2
        conv = nn.Conv1d(channels, channels, kernel_size, groups=groups)
        if init == "fairseq":
            nn.init.normal_(conv.weight, 0.0, math.sqrt(4.0 / (kernel_size * channels)))
            nn.init.zeros_(conv.bias)
        elif init != "torch":
            raise ValueError(f"init must be 'torch' or 'fairseq', got {init!r}")
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.weight_g = nn.Parameter(self.tap_norm(self.weight_v).detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    @staticmethod
    def tap_norm(weight: torch.Tensor) -> torch.Tensor:
        """The norm of each kernel tap, ``[1, 1, kernel]``."""
        return torch.linalg.vector_norm(weight, dim=(0, 1), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight_v * (self.weight_g / self.tap_norm(self.weight_v))
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class DropLastFrame(nn.Module):
    """``[B, C, T + 1] -> [B, C, T]``: the frame an even kernel with ``padding = kernel // 2`` adds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., :-1]


class WeightedLayerSum(nn.Module):
    """``sum_i softmax(w)_i * states[i]``; ``w`` (parameter ``weights``) starts at zero, i.e. the mean of all states."""

    def __init__(self, num_states: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_states))

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        if len(states) != self.weights.numel():
            raise ValueError(f"expected {self.weights.numel()} hidden states, got {len(states)}")
        mix = torch.softmax(self.weights.float(), dim=0).to(states[0].dtype)
        return sum((weight * state for weight, state in zip(mix, states, strict=True)), torch.zeros_like(states[0]))
