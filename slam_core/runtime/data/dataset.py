"""The map-style dataset run in DataLoader workers, and the collate function that pads its items into batches.

Workers hold only the manifest entries and the encoder's preprocessor (a small picklable
callable), never the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from slam_core import features as feature_batch
from slam_core.audio import AudioError
from slam_core.components import Modality
from slam_core.runtime.data.errors import SKIP_HINT, BadSampleError, DataError
from slam_core.runtime.data.index import bad_sample_message
from slam_core.runtime.data.manifest import Entry
from slam_core.runtime.data.media import read_raw

logger = logging.getLogger(__name__)

#: The field of a skipped item's sample dict saying why it was skipped.
SKIP_REASON = "error"
#: One dataset item: key, features (None: skipped as bad) and the sample dict.
Item = tuple[str, feature_batch.Features | None, dict[str, Any]]


class SampleDataset(Dataset):
    """``dataset[i] -> (key, features, sample)``: reads entry ``i``'s media and runs the preprocessor on it.

    ``modality`` (the encoder's) says what is read: see :mod:`slam_core.runtime.data.media`. The
    preprocessor runs with Python's, NumPy's and torch's generators seeded from ``seed``, the
    :attr:`epoch` and the sample's key (and the caller's generator states put back after), so a
    random augmentation of a sample depends on nothing else: not the worker that loads it, not
    the number of workers, not whether the run was resumed mid-epoch.

    A sample whose audio fails (unreadable, or refused by the preprocessor's checks) raises
    :class:`BadSampleError`, or with ``skip_bad`` is logged and returned with features ``None``.
    """

    def __init__(
        self,
        entries: Sequence[Entry],
        preprocessor: Callable[[Any], Any],
        *,
        skip_bad: bool,
        modality: Modality = "audio",
        seed: int = 0,
    ):
        if isinstance(preprocessor, torch.nn.Module):
            raise TypeError(
                "the data pipeline takes the encoder's preprocessor (encoder.preprocessor()), not a module: "
                "workers must not hold model weights"
            )
        self.entries = list(entries)
        self.preprocessor = preprocessor
        self.skip_bad = skip_bad
        self.modality = modality
        self.seed = seed
        self.epoch = 0  # set by the batches before each epoch's DataLoader starts its workers

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Item:
        entry = self.entries[index]
        try:
            raw = read_raw(entry, self.modality)
            with _seeded(sample_seed(self.seed, self.epoch, entry.key)):
                features = feature_batch.as_features(self.preprocessor(raw))
            if _empty(features):
                raise AudioError("the preprocessor made no feature frames")
        except AudioError as exc:
            message = bad_sample_message(entry, str(exc))
            if not self.skip_bad:
                raise BadSampleError(f"{message}; {SKIP_HINT}") from None
            logger.warning("skipping a bad sample (data.bad_samples: skip): %s", message)
            return entry.key, None, {**entry.fields, SKIP_REASON: message}
        return entry.key, features, dict(entry.fields)


def sample_seed(seed: int, epoch: int, key: str) -> int:
    """The seed of one sample's preprocessing in one epoch (64 bits of a SHA-256)."""
    digest = hashlib.sha256(f"{seed}\t{epoch}\t{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's CPU generators for one sample's preprocessing.

    In the main process (``num_workers: 0``) the caller's states are put back afterwards; a worker's
    generators serve only its samples, each seeded anew, so there is nothing to restore (and this
    runs once per sample, on the data path).
    """
    in_worker = torch.utils.data.get_worker_info() is not None
    saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.default_generator.get_state())
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if saved is not None:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.default_generator.set_state(saved[2])


def collate(items: Sequence[Item]) -> dict[str, Any]:
    """Pad the features of the good items with zeros to ``[B, T, ...]``; skipped keys go to ``skipped``,
    each with why in ``skip_reasons``.

    Returns the fields of a :class:`~slam_core.runtime.data.batch.Batch` as a dict (a dict, so that the
    DataLoader can pin its tensors); ``keys`` is empty when every item was skipped.
    """
    kept = [item for item in items if item[1] is not None]
    skipped = [key for key, features, _ in items if features is None]
    reasons = {key: sample[SKIP_REASON] for key, features, sample in items if features is None}
    if not kept:
        empty = torch.zeros(0)
        return {
            "keys": [],
            "features": empty,
            "feature_lengths": empty.long(),
            "samples": [],
            "skipped": skipped,
            "skip_reasons": reasons,
        }
    keys, features, samples = zip(*kept, strict=True)
    try:
        padded, lengths = feature_batch.pad(features)
    except ValueError as exc:
        raise DataError(f"samples {list(keys)}: {exc}") from None
    return {
        "keys": list(keys),
        "features": padded,
        "feature_lengths": lengths,
        "samples": list(samples),
        "skipped": skipped,
        "skip_reasons": reasons,
    }


def _empty(features: Any) -> bool:
    """Whether a sample's features (or any branch of them) have no frames."""
    if isinstance(features, feature_batch.PerBranch):
        return any(_empty(branch) for branch in features.values())
    try:
        return feature_batch.frames(features) == 0
    except ValueError as exc:
        raise AudioError(str(exc)) from None
