"""Duration-bucketed batch plans: which samples form each batch of an epoch, on each rank.

A plan is a pure function of the durations, the batch rule, the seed and the epoch, so every
rank computes the same plan and takes its own column of it, and a resumed run recomputes it
and skips the batches already done. Each step holds one batch per rank, taken from one
duration bucket where possible so that ranks wait little on each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchRule:
    """A batch's budget: at most ``max_samples`` samples and ``max_seconds`` padded seconds.

    Padded seconds are ``batch size × longest duration`` (what the padded features cost), so
    the total audio of a batch never exceeds ``max_seconds`` either. A sample longer than
    ``max_seconds`` forms a batch of its own.
    """

    max_samples: int | None = None
    max_seconds: float | None = None

    def __post_init__(self):
        if self.max_samples is None and self.max_seconds is None:
            raise ValueError("a batch rule needs max_samples, max_seconds or both")
        if (self.max_samples is not None and self.max_samples < 1) or (
            self.max_seconds is not None and not self.max_seconds > 0
        ):
            raise ValueError(f"batch limits must be positive: {self}")

    def fits(self, count: int, longest: float) -> bool:
        """Whether ``count`` samples whose longest lasts ``longest`` seconds make an allowed batch."""
        if self.max_samples is not None and count > self.max_samples:
            return False
        return self.max_seconds is None or count * longest <= self.max_seconds


def pack(indices: Iterable[int], durations: Sequence[float], rule: BatchRule) -> list[list[int]]:
    """Cut ``indices`` (in order) into consecutive batches that obey ``rule``, greedily."""
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0.0
    for index in indices:
        grown = max(longest, durations[index])
        if batch and not rule.fits(len(batch) + 1, grown):
            batches.append(batch)
            batch, grown = [], durations[index]
        batch.append(int(index))
        longest = grown
    if batch:
        batches.append(batch)
    return batches


def bucket_ids(durations: np.ndarray, num_buckets: int) -> np.ndarray:
    """Bucket of each duration: ``num_buckets`` duration ranges holding about equally many samples."""
    if num_buckets <= 1 or len(durations) == 0:
        return np.zeros(len(durations), dtype=np.int64)
    edges = np.unique(np.quantile(durations, np.linspace(0, 1, num_buckets + 1)[1:-1]))
    return np.searchsorted(edges, durations, side="right")


class BatchPlanner:
    """Plans the batches of each epoch from sample durations (seconds)."""

    def __init__(
        self,
        durations: Sequence[float],
        rule: BatchRule,
        *,
        bucketing: bool = True,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
    ):
        self.durations = [float(d) for d in durations]
        self.rule, self.shuffle, self.seed = rule, shuffle, seed
        buckets = _useful_buckets(self.durations, rule, num_buckets) if bucketing else 1
        self.buckets = bucket_ids(np.asarray(self.durations), buckets)

    def steps(self, epoch: int, world_size: int = 1) -> list[list[list[int]]]:
        """The epoch's steps, each ``world_size`` batches of sample indices (one per rank).

        Every sample appears once, except when the last step has fewer samples than ranks:
        then some ranks repeat a sample so that all ranks run the same number of steps.
        """
        if epoch < 0 or world_size < 1:
            raise ValueError(f"need epoch >= 0 and world_size >= 1, got {epoch} and {world_size}")
        rng = np.random.default_rng([self.seed % 2**64, epoch])
        order = rng.permutation(len(self.durations)) if self.shuffle else np.arange(len(self.durations))
        ordered_buckets = self.buckets[order]
        steps: list[list[list[int]]] = []
        leftovers: list[list[int]] = []
        for bucket in np.unique(ordered_buckets):
            batches = pack(order[ordered_buckets == bucket], self.durations, self.rule)
            whole = len(batches) - len(batches) % world_size
            steps += [batches[i : i + world_size] for i in range(0, whole, world_size)]
            leftovers += batches[whole:]  # neighbouring buckets share the last steps
        steps += [leftovers[i : i + world_size] for i in range(0, len(leftovers), world_size)]
        short = steps.pop() if steps and len(steps[-1]) < world_size else None
        if self.shuffle:
            steps = [steps[i] for i in rng.permutation(len(steps))]
        if short is not None:
            steps.append(_spread(short, world_size))
        return steps

    def batches(self, epoch: int, rank: int = 0, world_size: int = 1) -> list[list[int]]:
        """Rank ``rank``'s batches of the epoch: disjoint from the other ranks', as many as theirs."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        return [step[rank] for step in self.steps(epoch, world_size)]


def _useful_buckets(durations: Sequence[float], rule: BatchRule, num_buckets: int) -> int:
    """At most as many buckets as the data fills batches, so that each bucket fills about one batch or more."""
    batches = max(
        len(durations) / rule.max_samples if rule.max_samples else 0.0,
        sum(durations) / rule.max_seconds if rule.max_seconds else 0.0,
    )
    return max(1, min(num_buckets, int(batches)))


def _spread(batches: list[list[int]], world_size: int) -> list[list[int]]:
    """``world_size`` batches made of ``batches``: split the largest in halves, then repeat samples if too few."""
    pieces = [list(batch) for batch in batches]
    while len(pieces) < world_size:
        largest = max(range(len(pieces)), key=lambda i: len(pieces[i]))
        if len(pieces[largest]) < 2:
            break
        half = len(pieces[largest]) // 2
        pieces[largest : largest + 1] = [pieces[largest][:half], pieces[largest][half:]]
    samples = [index for piece in pieces for index in piece]
    pieces += [[samples[i % len(samples)]] for i in range(world_size - len(pieces))]
    return pieces
