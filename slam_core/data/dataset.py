"""The map-style dataset run in DataLoader workers, and the collate function that pads its items into batches.

Workers hold only the manifest entries and the encoder's preprocessor (a small picklable
callable), never the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from slam_core.audio import AudioError
from slam_core.data.audiofile import read_audio
from slam_core.data.errors import SKIP_HINT, BadSampleError, DataError
from slam_core.data.index import bad_sample_message
from slam_core.data.manifest import Entry

logger = logging.getLogger(__name__)

#: One dataset item: key, features ``[T, ...]`` (None: skipped as bad) and the sample dict.
Item = tuple[str, torch.Tensor | None, dict[str, Any]]


class SampleDataset(Dataset):
    """``dataset[i] -> (key, features, sample)``: reads entry ``i``'s audio and runs the preprocessor on it.

    A sample whose audio fails (unreadable, or refused by the preprocessor's checks) raises
    :class:`BadSampleError`, or with ``skip_bad`` is logged and returned with features ``None``.
    """

    def __init__(self, entries: Sequence[Entry], preprocessor: Callable[[Any], torch.Tensor], *, skip_bad: bool):
        if isinstance(preprocessor, torch.nn.Module):
            raise TypeError(
                "the data pipeline takes the encoder's preprocessor (encoder.preprocessor()), not a module: "
                "workers must not hold model weights"
            )
        self.entries = list(entries)
        self.preprocessor = preprocessor
        self.skip_bad = skip_bad

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Item:
        entry = self.entries[index]
        try:
            raw = read_audio(entry.path, entry.offset, entry.duration, entry.channels)
            features = torch.as_tensor(self.preprocessor(raw))
            if features.ndim == 0 or features.shape[0] == 0:
                raise AudioError(f"the preprocessor made no feature frames (shape {tuple(features.shape)})")
        except AudioError as exc:
            message = bad_sample_message(entry, str(exc))
            if not self.skip_bad:
                raise BadSampleError(f"{message}; {SKIP_HINT}") from None
            logger.warning("skipping a bad sample (data.bad_samples: skip): %s", message)
            return entry.key, None, dict(entry.fields)
        return entry.key, features, dict(entry.fields)


def collate(items: Sequence[Item]) -> dict[str, Any]:
    """Pad the features of the good items with zeros to ``[B, T, ...]``; skipped keys go to ``skipped``.

    Returns the fields of a :class:`~slam_core.data.batch.Batch` as a dict (a dict, so that the
    DataLoader can pin its tensors); ``keys`` is empty when every item was skipped.
    """
    kept = [item for item in items if item[1] is not None]
    skipped = [key for key, features, _ in items if features is None]
    if not kept:
        empty = torch.zeros(0)
        return {"keys": [], "features": empty, "feature_lengths": empty.long(), "samples": [], "skipped": skipped}
    keys, features, samples = zip(*kept, strict=True)
    shapes = {(tuple(f.shape[1:]), f.dtype) for f in features}
    if len(shapes) > 1:
        shown = sorted(map(str, shapes))
        raise DataError(f"samples {list(keys)} have features of different shapes [T, ...] or dtypes: {shown}")
    return {
        "keys": list(keys),
        "features": pad_sequence(list(features), batch_first=True, padding_value=0.0),
        "feature_lengths": torch.tensor([f.shape[0] for f in features], dtype=torch.long),
        "samples": list(samples),
        "skipped": skipped,
    }
