"""Combining the modality embeddings of several encoder branches (multi-encoder fusion).

Each branch is an encoder with its own projector, so every branch already gives LLM-width
embeddings ``[B, T_i, D]`` with exact lengths. They are combined

- in ``time``: per sample, the branches' valid frames one after the other (lengths add up);
- per ``frame``: frame ``t`` of every branch summed (the branches must run at the same frame
  rate; lengths may differ by up to ``max_frame_difference`` rounding frames, and the
  combination keeps the shortest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch.nn.utils.rnn import pad_sequence

from slam_core.errors import FusionError

FusionMode = Literal["time", "frame"]


def fused_lengths(
    lengths: Sequence[torch.Tensor], mode: FusionMode, max_frame_difference: int = 2, names: Sequence[str] = ()
) -> torch.Tensor:
    """The exact number of fused positions per sample for branches with ``lengths``."""
    stacked = torch.stack([torch.as_tensor(n) for n in lengths])
    if mode == "time":
        return stacked.sum(0)
    if mode != "frame":
        raise ValueError(f"fusion mode must be 'time' or 'frame', got {mode!r}")
    shortest, longest = stacked.min(0).values, stacked.max(0).values
    if stacked.device.type != "meta" and bool((longest - shortest > max_frame_difference).any()):
        shown = dict(zip(names or range(len(lengths)), (n.tolist() for n in stacked), strict=False))
        raise FusionError(
            f"per-frame fusion needs branches at the same frame rate, but their lengths differ by more than "
            f"{max_frame_difference} frames: {shown}; match the projectors' downsampling to the encoders' frame "
            "rates, or fuse in time"
        )
    return shortest


def fuse(
    embeds: Sequence[torch.Tensor],
    lengths: Sequence[torch.Tensor],
    mode: FusionMode,
    max_frame_difference: int = 2,
    names: Sequence[str] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Combine branch embeddings ``[B, T_i, D]`` into ``([B, T, D], lengths)``, zero past each length."""
    out_lengths = fused_lengths(lengths, mode, max_frame_difference, names)
    if mode == "time":
        rows = [
            torch.cat([e[row, : int(n[row])] for e, n in zip(embeds, lengths, strict=True)])
            for row in range(embeds[0].shape[0])
        ]
        return pad_sequence(rows, batch_first=True), out_lengths
    width = int(out_lengths.max()) if out_lengths.numel() else 0
    total = sum(e[:, :width] for e in embeds)
    valid = torch.arange(width, device=total.device)[None, :] < out_lengths.to(total.device)[:, None]
    return total * valid[..., None].to(total.dtype), out_lengths
