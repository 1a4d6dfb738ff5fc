"""Sequence packing: several samples of a right-padded batch laid end to end in fewer rows.

A padded batch ``[B, L]`` spends compute on padding; packed rows ``[R, C]`` (``R <= B``) hold
the samples back to back, each numbered from position 0 again, so that a causal LM that reads
those ``position_ids`` (transformers does, with no 2-D attention mask: block-diagonal masks for
SDPA and eager attention, variable-length kernels for flash-attention) lets no sample attend
to another. Rows are filled first-fit decreasing. Like :mod:`slam_core.splice`, this is pure
index arithmetic, tested on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Sample indices per row: longest first, each into the first row it fits (``capacity`` tokens a row).

    A sample longer than ``capacity`` is refused (:class:`ValueError`); within a row the samples
    keep the order they were placed in.
    """
    if capacity < 1:
        raise ValueError(f"a packed row needs a capacity of at least 1 token, got {capacity}")
    too_long = [n for n in lengths if n > capacity]
    if too_long:
        raise ValueError(f"samples of {max(too_long)} tokens do not fit packed rows of {capacity}")
    rows: list[list[int]] = []
    free: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, room in enumerate(free) if room >= lengths[index]), None)
        if row is None:
            rows.append([])
            free.append(capacity)
            row = len(rows) - 1
        rows[row].append(index)
        free[row] -= lengths[index]
    return rows


@dataclass(frozen=True)
class PackedRows:
    """Where each position of the packed rows comes from (all tensors ``[R, C]``).

    ``source`` is the flat index ``b * L + t`` of the padded batch position a packed position
    holds, or ``-1`` for the padding at a row's end; ``position_ids`` restart at 0 for each
    sample (the padding at a row's end is numbered as a sequence of its own).
    """

    rows: list[list[int]]
    source: torch.Tensor
    position_ids: torch.Tensor

    def gather(self, grid: torch.Tensor, fill: float | int = 0) -> torch.Tensor:
        """``grid [B, L, ...]`` laid out as the packed rows ``[R, C, ...]``; padding takes ``fill``."""
        flat = grid.reshape(-1, *grid.shape[2:])
        padded = torch.cat([flat, flat.new_full((1, *flat.shape[1:]), fill)])
        index = self.source.to(grid.device)
        return padded[torch.where(index < 0, len(flat), index)]

    def original_order(self, packed_keep: torch.Tensor) -> torch.Tensor:
        """The permutation that takes values at ``packed_keep``'s True positions (row-major over the
        packed rows) to row-major order over the padded batch."""
        return torch.argsort(self.source.to(packed_keep.device)[packed_keep])


def pack(attention_mask: torch.Tensor, capacity: int | None = None) -> PackedRows:
    """Pack the samples of a right-padded batch (``attention_mask [B, L]``) into rows of ``capacity``.

    The capacity is at least the longest sample (the default), so every sample fits; a larger
    one gives fewer, longer rows.
    """
    mask = attention_mask.long().cpu()
    counts = mask.sum(1)
    width = mask.shape[1]
    if not torch.equal(mask, (torch.arange(width)[None, :] < counts[:, None]).long()):
        raise ValueError("pack() takes a right-padded batch: each row's real positions first, then padding")
    lengths = counts.tolist()
    capacity = max(capacity or 0, max(lengths, default=0), 1)
    rows = first_fit_decreasing(lengths, capacity)
    row_width = max((sum(lengths[i] for i in row) for row in rows), default=0)
    source = torch.full((len(rows), row_width), -1, dtype=torch.long)
    positions = torch.zeros((len(rows), row_width), dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for b in row:
            n = lengths[b]
            source[r, start : start + n] = torch.arange(n) + b * width
            positions[r, start : start + n] = torch.arange(n)
            start += n
        positions[r, start:] = torch.arange(row_width - start)
    return PackedRows(rows=rows, source=source, position_ids=positions)
