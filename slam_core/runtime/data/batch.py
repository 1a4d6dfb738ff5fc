"""What the data pipeline hands to the trainer and the decoder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from slam_core import features as feature_ops


@dataclass
class Batch:
    """A padded batch of encoder features and the manifest entries they came from.

    Text (prompt and target token ids) is built from ``samples`` in the main process by
    ``SlamModel.text_inputs``, so data workers never hold the model or its tokenizer.
    """

    keys: list[str]
    features: Any  # [B, T, ...] padded with zeros, or a dict of such (see slam_core.features)
    feature_lengths: Any  # [B] valid frames per sample (per branch for a PerBranch of features)
    samples: list[dict[str, Any]]  # manifest entries: key, source, target, task fields
    skipped: list[str] = field(default_factory=list)  # keys dropped by the bad-sample policy

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with its tensors on ``device``."""
        return Batch(
            self.keys,
            feature_ops.apply(self.features, lambda tensor: tensor.to(device, non_blocking=True)),
            feature_ops.apply(self.feature_lengths, lambda tensor: tensor.to(device, non_blocking=True)),
            self.samples,
            self.skipped,
        )

    def __len__(self) -> int:
        return len(self.keys)


class ResumableBatches(Protocol):
    """An epoch-aware, resumable source of batches (the trainer's view of the data).

    ``set_epoch`` reshuffles deterministically from the seed; ``state_dict`` records the
    position within the epoch so that ``load_state_dict`` resumes at the next batch.
    """

    def set_epoch(self, epoch: int) -> None: ...

    def __iter__(self) -> Iterator[Batch]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
