"""Batch plans: the budget, bucketing, per-epoch reshuffling from the seed, rank sharding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slam_core.runtime.data import BatchPlanner, BatchRule
from slam_core.runtime.data.sampler import bucket_ids, pack

durations = st.lists(st.floats(0.01, 20.0), min_size=1, max_size=60)
rules = (
    st.tuples(st.none() | st.integers(1, 8), st.none() | st.floats(0.05, 40.0))
    .filter(lambda limits: limits != (None, None))
    .map(lambda limits: BatchRule(*limits))
)
settings_of_planners = st.fixed_dictionaries(
    {
        "durations": durations,
        "rule": rules,
        "bucketing": st.booleans(),
        "num_buckets": st.integers(1, 6),
        "shuffle": st.booleans(),
        "seed": st.integers(-(2**40), 2**40),
    }
)
planners = settings_of_planners.map(lambda kwargs: BatchPlanner(**kwargs))


@settings(max_examples=150, deadline=None)
@given(planners, st.integers(0, 5), st.integers(1, 5))
def test_no_batch_exceeds_the_budget_unless_one_sample_alone_does(planner, epoch, world_size):
    rule = planner.rule
    for step in planner.steps(epoch, world_size):
        for batch in step:
            lengths = [planner.durations[i] for i in batch]
            if len(batch) > 1:
                assert rule.fits(len(batch), max(lengths))
                if rule.max_seconds is not None:
                    assert sum(lengths) <= rule.max_seconds * (1 + 1e-9)
                if rule.max_samples is not None:
                    assert len(batch) <= rule.max_samples
            else:
                assert len(batch) == 1


@settings(max_examples=150, deadline=None)
@given(planners, st.integers(0, 5), st.integers(1, 6))
def test_ranks_get_disjoint_covering_shares_with_equal_batch_counts(planner, epoch, world_size):
    shares = [planner.batches(epoch, rank, world_size) for rank in range(world_size)]
    assert len({len(share) for share in shares}) == 1
    assert {i for share in shares for batch in share for i in batch} == set(range(len(planner.durations)))
    earlier = [i for share in shares for batch in share[:-1] for i in batch]
    last = [i for share in shares for i in share[-1]]
    assert len(earlier) == len(set(earlier)) and not set(earlier) & set(last)  # disjoint
    if len(last) > len(set(last)):  # samples repeat only to give each rank of the last step one sample
        assert len(last) == world_size > len(set(last))


@settings(max_examples=50, deadline=None)
@given(settings_of_planners, st.integers(0, 5), st.integers(1, 4))
def test_the_same_seed_and_epoch_give_the_same_plan(kwargs, epoch, world_size):
    assert BatchPlanner(**kwargs).steps(epoch, world_size) == BatchPlanner(**kwargs).steps(epoch, world_size)


def _flat(planner: BatchPlanner, epoch: int) -> list[int]:
    return [i for batch in planner.batches(epoch) for i in batch]


def test_each_epoch_reshuffles_from_the_seed():
    lengths = np.random.default_rng(0).uniform(0.5, 15, 200)
    planner = BatchPlanner(lengths, BatchRule(max_seconds=30), num_buckets=4, seed=3)
    orders = {tuple(_flat(planner, epoch)) for epoch in range(5)}
    assert len(orders) == 5
    assert _flat(planner, 2) == _flat(BatchPlanner(lengths, BatchRule(max_seconds=30), num_buckets=4, seed=3), 2)
    assert _flat(planner, 2) != _flat(BatchPlanner(lengths, BatchRule(max_seconds=30), num_buckets=4, seed=4), 2)


def test_without_shuffle_every_epoch_is_the_same_and_keeps_manifest_order_per_bucket():
    lengths = np.random.default_rng(1).uniform(0.5, 15, 100)
    planner = BatchPlanner(lengths, BatchRule(max_samples=4), num_buckets=3, shuffle=False)
    assert planner.batches(0) == planner.batches(7)
    for bucket in range(3):
        in_bucket = [i for i in _flat(planner, 0) if planner.buckets[i] == bucket]
        assert in_bucket == sorted(in_bucket)
    unbucketed = BatchPlanner(lengths, BatchRule(max_samples=4), bucketing=False, shuffle=False)
    assert _flat(unbucketed, 0) == list(range(100))


def test_bucketing_cuts_padding():
    lengths = np.random.default_rng(2).uniform(0.5, 20, 400)

    def padded(planner):
        return sum(len(b) * max(lengths[i] for i in b) for b in planner.batches(0))

    bucketed = BatchPlanner(lengths, BatchRule(8, 60.0), num_buckets=10, seed=0)
    flat = BatchPlanner(lengths, BatchRule(8, 60.0), bucketing=False, seed=0)
    assert padded(bucketed) < 0.8 * padded(flat)


@given(st.lists(st.floats(0.0, 100.0), max_size=50), st.integers(1, 12))
def test_buckets_are_ordered_duration_ranges(lengths, num_buckets):
    ids = bucket_ids(np.array(lengths), num_buckets)
    assert len(ids) == len(lengths) and (len(ids) == 0 or 0 <= ids.min() <= ids.max() < num_buckets)
    by_length = [bucket for _, bucket in sorted(zip(lengths, ids.tolist(), strict=True))]
    assert by_length == sorted(by_length)


@given(st.lists(st.floats(0.01, 5.0), max_size=30), rules)
def test_pack_keeps_order_and_every_index(lengths, rule):
    batches = pack(range(len(lengths)), lengths, rule)
    assert [i for batch in batches for i in batch] == list(range(len(lengths)))


def test_a_long_sample_forms_its_own_batch():
    assert pack(range(4), [1.0, 9.0, 1.0, 1.0], BatchRule(max_seconds=4.0)) == [[0], [1], [2, 3]]


@pytest.mark.parametrize(("samples", "seconds"), [(None, None), (0, None), (None, 0.0), (2, -1.0)])
def test_a_rule_needs_positive_limits(samples, seconds):
    with pytest.raises(ValueError):
        BatchRule(samples, seconds)


def test_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, world_size=2\)"):
        BatchPlanner([1.0], BatchRule(1)).batches(0, rank=2, world_size=2)
