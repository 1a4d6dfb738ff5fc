"""Encoder features as the data pipeline and the model pass them around.

One sample's features are a tensor ``[T, ...]``, or a dict of tensors sharing the time axis
``T`` (aligned streams, e.g. lip frames and filterbanks at 25 Hz). A batch pads each tensor
with zeros to ``[B, T_max, ...]`` and has one length per sample. A pipeline with several
encoder branches (fusion) keeps one such structure per branch in a :class:`PerBranch`, with
its own lengths, since branches run at different frame rates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

#: One sample's (or one batch's) features.
Features = torch.Tensor | Mapping[str, torch.Tensor]


class PerBranch(dict):
    """Features (or lengths) keyed by encoder branch name; each branch is batched on its own."""


def frames(features: Features, name: str = "features") -> int:
    """The number of time frames of one sample's features (every stream of a dict must agree)."""
    if isinstance(features, torch.Tensor):
        if features.ndim == 0:
            raise ValueError(f"{name}: a scalar has no time axis")
        return int(features.shape[0])
    counts = {key: int(value.shape[0]) for key, value in features.items()}
    if not counts:
        raise ValueError(f"{name}: an empty dict of feature streams")
    if len(set(counts.values())) > 1:
        raise ValueError(f"{name}: the streams of a sample must share their time axis, got frames {counts}")
    return next(iter(counts.values()))


def as_features(value: Any) -> Features:
    """A preprocessor's output as tensors (arrays and lists become tensors; dicts keep their keys)."""
    if isinstance(value, PerBranch):
        return PerBranch((key, as_features(item)) for key, item in value.items())
    if isinstance(value, Mapping):
        return {key: torch.as_tensor(item) for key, item in value.items()}
    return torch.as_tensor(value)


def pad(items: Sequence[Features]) -> tuple[Any, Any]:
    """Pad samples' features into a batch: ``(padded, lengths [B])``; per branch for :class:`PerBranch`."""
    first = items[0]
    if isinstance(first, PerBranch):
        padded, lengths = PerBranch(), PerBranch()
        for branch in first:
            padded[branch], lengths[branch] = pad([item[branch] for item in items])
        return padded, lengths
    lengths = torch.tensor([frames(item) for item in items], dtype=torch.long)
    if isinstance(first, torch.Tensor):
        _check_shapes([(tuple(item.shape[1:]), item.dtype) for item in items])
        return pad_sequence(list(items), batch_first=True, padding_value=0.0), lengths
    keys = set(first)
    for item in items:
        if set(item) != keys:
            raise ValueError(f"samples have different feature streams: {sorted(keys)} vs {sorted(item)}")
    padded = {}
    for key in first:
        _check_shapes([(tuple(item[key].shape[1:]), item[key].dtype) for item in items], key)
        padded[key] = pad_sequence([item[key] for item in items], batch_first=True, padding_value=0.0)
    return padded, lengths


def _check_shapes(shapes: list[tuple[tuple[int, ...], torch.dtype]], stream: str | None = None) -> None:
    distinct = sorted({str(shape) for shape in shapes})
    if len(distinct) > 1:
        where = f" of stream {stream!r}" if stream else ""
        raise ValueError(f"features{where} have different shapes [T, ...] or dtypes across the batch: {distinct}")


def apply(batch: Any, function: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """``function`` applied to every tensor of a (possibly nested) features or lengths structure."""
    if isinstance(batch, torch.Tensor):
        return function(batch)
    if isinstance(batch, Mapping):
        return type(batch)((key, apply(value, function)) for key, value in batch.items())
    raise TypeError(f"expected a tensor or a dict of tensors, got {type(batch).__name__}")


def batch_size(batch: Any) -> int:
    """Samples in a batch of features."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    return batch_size(next(iter(batch.values())))


def device(batch: Any) -> torch.device:
    """The device of a batch of features."""
    if isinstance(batch, torch.Tensor):
        return batch.device
    return device(next(iter(batch.values())))


def rows(batch: Any, lengths: Any, index: Sequence[int] | slice) -> tuple[Any, Any]:
    """The samples ``index`` of a padded batch, trimmed to their longest length."""
    if isinstance(lengths, PerBranch):
        picked = {branch: rows(batch[branch], lengths[branch], index) for branch in lengths}
        return PerBranch((b, p[0]) for b, p in picked.items()), PerBranch((b, p[1]) for b, p in picked.items())
    selected = lengths[index]
    longest = int(selected.max()) if selected.numel() else 0
    return apply(batch, lambda tensor: tensor[index, :longest]), selected
