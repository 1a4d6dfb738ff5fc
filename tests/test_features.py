"""Feature batching: tensors, aligned streams (dicts) and per-branch features (fusion)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from slam_core import features as feature_ops
from slam_core.features import PerBranch
from slam_core.runtime.data.dataset import collate
from slam_core.runtime.data.errors import DataError


def _sample(frames: int, seed: int, streams: bool) -> torch.Tensor | dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    video = torch.randn(frames, 3, 3, generator=generator)
    if not streams:
        return video
    return {"video": video, "audio": torch.randn(frames, 5, generator=generator)}


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=5), streams=st.booleans())
def test_pad_then_rows_gives_back_each_sample(lengths, streams):
    items = [_sample(n, seed, streams) for seed, n in enumerate(lengths)]
    padded, got_lengths = feature_ops.pad(items)
    assert got_lengths.tolist() == lengths
    assert feature_ops.batch_size(padded) == len(lengths)
    for index, item in enumerate(items):
        alone, alone_lengths = feature_ops.rows(padded, got_lengths, slice(index, index + 1))
        assert alone_lengths.tolist() == [lengths[index]]
        torch.testing.assert_close(
            alone if not streams else dict(alone),
            item[None] if not streams else {key: value[None] for key, value in item.items()},
        )
    # padding is zeros, past each length, in every stream
    for tensor in [padded] if not streams else list(padded.values()):
        for index, n in enumerate(lengths):
            assert not tensor[index, n:].any()


def test_per_branch_features_keep_their_own_lengths():
    items = [PerBranch(a=torch.ones(n, 2), b=torch.ones(2 * n + 1, 4)) for n in (3, 5)]
    padded, lengths = feature_ops.pad(items)
    assert isinstance(padded, PerBranch) and isinstance(lengths, PerBranch)
    assert lengths["a"].tolist() == [3, 5] and lengths["b"].tolist() == [7, 11]
    assert padded["b"].shape == (2, 11, 4)
    picked, picked_lengths = feature_ops.rows(padded, lengths, [0])
    assert picked["a"].shape == (1, 3, 2) and picked_lengths["b"].tolist() == [7]


def test_streams_of_one_sample_must_share_their_time_axis():
    with pytest.raises(ValueError, match=r"share their time axis.*'video': 4.*'audio': 5"):
        feature_ops.frames({"video": torch.zeros(4, 2), "audio": torch.zeros(5, 2)})


def test_collate_names_the_samples_whose_features_do_not_fit_together():
    items = [("a", {"video": torch.zeros(3, 2)}, {}), ("b", {"audio": torch.zeros(3, 2)}, {})]
    with pytest.raises(DataError, match=r"\['a', 'b'\].*different feature streams"):
        collate(items)
    items = [("a", torch.zeros(3, 2), {}), ("b", torch.zeros(3, 4), {})]
    with pytest.raises(DataError, match="different shapes"):
        collate(items)


def test_apply_moves_nested_structures_and_refuses_other_types():
    batch = PerBranch(a={"video": torch.zeros(1, 2)}, b=torch.zeros(1, 3))
    doubled = feature_ops.apply(batch, lambda tensor: tensor.double())
    assert isinstance(doubled, PerBranch) and doubled["a"]["video"].dtype == torch.float64
    with pytest.raises(TypeError, match="expected a tensor or a dict"):
        feature_ops.apply([torch.zeros(1)], lambda tensor: tensor)
