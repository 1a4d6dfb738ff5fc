"""Random augmentation in preprocessors is a function of (seed, epoch, key): workers and resumes do not change it."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import soundfile
import torch

from slam_core.runtime.data.loader import manifest_batches
from slam_core.spec import DataSpec


class NoisyFrames:
    """A picklable preprocessor with randomness from all three generators (as an augmentation would)."""

    def __call__(self, raw):
        frames = torch.as_tensor(raw.waveform[:1600]).reshape(-1, 160)
        noise = torch.rand(frames.shape) + random.random() + float(np.random.rand())
        return frames + noise


@pytest.fixture
def manifest(tmp_path) -> str:
    lines = []
    for index in range(8):
        soundfile.write(tmp_path / f"u{index}.wav", np.zeros(1600 + 160 * index), 16000)
        lines.append(json.dumps({"key": f"u{index}", "source": f"u{index}.wav"}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "m.jsonl")


def _features(manifest: str, epoch: int, workers: int, *, resume_after: int | None = None) -> dict[str, torch.Tensor]:
    data = DataSpec(batch_size=2, num_workers=workers, bucketing=False)
    batches = manifest_batches(manifest, NoisyFrames(), data, shuffle=True, seed=7)
    batches.set_epoch(epoch)
    if resume_after is not None:
        iterator = iter(batches)
        for _ in range(resume_after):
            next(iterator)
        state = batches.state_dict()
        iterator.close()
        batches = manifest_batches(manifest, NoisyFrames(), data, shuffle=True, seed=7)
        batches.load_state_dict(state)
    torch.manual_seed(123)  # the caller's generator state must not matter
    return {key: batch.features[row] for batch in batches for row, key in enumerate(batch.keys)}


def test_augmentation_is_the_same_with_or_without_workers_and_changes_with_the_epoch(manifest):
    alone = _features(manifest, epoch=0, workers=0)
    assert len(alone) == 8
    with_workers = _features(manifest, epoch=0, workers=2)
    assert all(torch.equal(alone[key], with_workers[key]) for key in alone)
    next_epoch = _features(manifest, epoch=1, workers=0)
    assert all(not torch.equal(alone[key], next_epoch[key]) for key in alone)


def test_a_resumed_epoch_augments_its_remaining_samples_as_the_whole_epoch_did(manifest):
    whole = _features(manifest, epoch=1, workers=0)
    resumed = _features(manifest, epoch=1, workers=2, resume_after=2)
    assert len(resumed) == 4
    assert all(torch.equal(resumed[key], whole[key]) for key in resumed)


def test_preprocessing_leaves_the_callers_generators_alone(manifest):
    data = DataSpec(batch_size=2, num_workers=0, bucketing=False)
    batches = manifest_batches(manifest, NoisyFrames(), data, shuffle=False, seed=7)
    batches.set_epoch(0)
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), float(np.random.rand()))
    random.seed(5)
    np.random.seed(5)
    batches.dataset[3]
    assert (random.random(), float(np.random.rand())) == expected
