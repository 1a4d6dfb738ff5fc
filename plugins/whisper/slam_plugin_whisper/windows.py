"""Length arithmetic and the split of long inputs into encoder windows (pure tensor code)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


def conv_output_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """Frames after Whisper's convs (k3 s1 p1, then k3 s2 p1): ``(T - 1) // 2 + 1``, i.e. ``ceil(T / 2)``.

    Exact for chunked inputs too: the window (3000 frames) is even, so ``ceil`` adds up over windows.
    """
    return torch.div(lengths - 1, 2, rounding_mode="floor") + 1


def time_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """``[B, width]``, true on each row's first ``lengths[b]`` positions."""
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


class Windows(NamedTuple):
    """Non-empty windows of a batch: ``pieces [N, T_w, M]``, their ``lengths [N]`` and grid ``slots [N]``.

    Window ``w`` of sample ``b`` sits at slot ``b * count + w``.
    """

    pieces: torch.Tensor
    lengths: torch.Tensor
    slots: torch.Tensor
    count: int


def split_windows(features: torch.Tensor, lengths: torch.Tensor, window: int) -> Windows:
    """Cut ``features [B, T, M]`` into windows of ``window`` frames, dropping empty ones."""
    batch, width, mels = features.shape
    count = max(1, math.ceil(width / window))
    if count == 1:
        return Windows(features, lengths, torch.arange(batch, device=lengths.device), 1)
    grid = torch.nn.functional.pad(features, (0, 0, 0, count * window - width)).reshape(batch * count, window, mels)
    starts = window * torch.arange(count, device=lengths.device)
    grid_lengths = (lengths[:, None] - starts[None, :]).clamp(0, window).reshape(-1)
    slots = torch.nonzero(grid_lengths > 0).squeeze(1)
    piece_lengths = grid_lengths[slots]
    widest = int(piece_lengths.max()) if slots.numel() else 0
    return Windows(grid[slots, :widest], piece_lengths, slots, count)


def merge_windows(hidden: torch.Tensor, windows: Windows, batch: int, window_out: int) -> torch.Tensor:
    """Put each window's ``hidden [N, T_o, D]`` back in its sample: ``[B, count * window_out, D]``.

    Every window but a sample's last is full, so window ``w`` starts at output frame ``w * window_out``.
    """
    if windows.count == 1:
        return hidden
    grid = hidden.new_zeros(batch * windows.count, window_out, hidden.shape[-1])
    grid[windows.slots, : hidden.shape[1]] = hidden
    return grid.reshape(batch, windows.count * window_out, hidden.shape[-1])
