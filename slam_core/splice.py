"""Where every token and modality embedding goes in the LLM input.

Each sample becomes ``[prefix | modality | suffix | target]``. :func:`layout` computes the
padded token grid, which positions take modality embeddings, the attention mask and the
labels (−100 everywhere but the target), for right padding (training) or left padding
(generation). It is pure index arithmetic, so it is tested exhaustively on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class SpliceLayout:
    """The padded LLM input grid for one batch (all tensors ``[B, L]``)."""

    input_ids: torch.Tensor  # text token ids; pad id at modality and padding positions
    modality_mask: torch.Tensor  # True where a modality embedding goes
    attention_mask: torch.Tensor  # 1 on real positions, 0 on padding
    labels: torch.Tensor  # target token ids on target positions, IGNORE_INDEX elsewhere


def layout(
    prefix_ids: Sequence[Sequence[int]],
    modality_lengths: Sequence[int],
    suffix_ids: Sequence[Sequence[int]],
    target_ids: Sequence[Sequence[int]] | None,
    pad_id: int,
    padding_side: Literal["left", "right"],
) -> SpliceLayout:
    """Lay out ``[prefix | modality | suffix | target]`` per sample, padded to the longest."""
    batch = len(prefix_ids)
    if not (len(modality_lengths) == len(suffix_ids) == batch) or (target_ids is not None and len(target_ids) != batch):
        raise ValueError("prefix_ids, modality_lengths, suffix_ids and target_ids must have one entry per sample")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    targets = target_ids if target_ids is not None else [[] for _ in range(batch)]
    rows = []
    for prefix, n_modality, suffix, target in zip(prefix_ids, modality_lengths, suffix_ids, targets, strict=False):
        n_modality = int(n_modality)
        if n_modality < 0:
            raise ValueError(f"modality length must be >= 0, got {n_modality}")
        ids = [*prefix, *([pad_id] * n_modality), *suffix, *target]
        kinds = [0] * len(prefix) + [1] * n_modality + [0] * len(suffix) + [2] * len(target)
        rows.append((ids, kinds))
    width = max((len(ids) for ids, _ in rows), default=0)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    kind_grid = torch.full((batch, width), -1, dtype=torch.long)  # -1 marks padding
    for row, (ids, kinds) in enumerate(rows):
        span = slice(width - len(ids), width) if padding_side == "left" else slice(0, len(ids))
        input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
        kind_grid[row, span] = torch.tensor(kinds, dtype=torch.long)
    labels = torch.where(kind_grid == 2, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return SpliceLayout(
        input_ids=input_ids,
        modality_mask=kind_grid == 1,
        attention_mask=(kind_grid >= 0).long(),
        labels=labels,
    )


def predicting_positions(labels: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` bool: True where the next position's label is a target token (where a loss is taken)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE_INDEX
    return keep


def splice_embeddings(
    text_embeds: torch.Tensor,
    modality_mask: torch.Tensor,
    modality_embeds: torch.Tensor,
    modality_lengths: torch.Tensor,
) -> torch.Tensor:
    """Put the first ``modality_lengths[b]`` rows of ``modality_embeds[b]`` at ``modality_mask[b]``.

    ``text_embeds [B, L, D]``, ``modality_mask [B, L]``, ``modality_embeds [B, T, D]`` with
    ``T == max(modality_lengths)``. Differentiable with respect to both embeddings.
    """
    valid = torch.arange(modality_embeds.shape[1], device=modality_lengths.device)[None, :] < modality_lengths[:, None]
    slots, embeddings = modality_mask.sum(1).cpu(), valid.sum(1).cpu()
    if not torch.equal(slots, embeddings):
        raise ValueError(
            f"per sample, {slots.tolist()} modality positions in the layout but {embeddings.tolist()} valid "
            "modality embeddings: the projector's lengths disagree with its output_lengths()"
        )
    source = modality_embeds[valid.to(modality_embeds.device)].to(text_embeds.dtype)
    mask = modality_mask.to(text_embeds.device)[..., None].expand_as(text_embeds)
    return text_embeds.masked_scatter(mask, source)
