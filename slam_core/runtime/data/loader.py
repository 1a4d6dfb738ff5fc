"""Resumable, epoch-aware batches of a split: manifest → index → batch plan → DataLoader → :class:`Batch`.

:func:`build_batches` is the entry point the trainer and the decoder use.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch.utils.data import DataLoader

from slam_core.runtime.data.batch import Batch
from slam_core.runtime.data.dataset import SampleDataset, collate
from slam_core.runtime.data.errors import DataError, ManifestError
from slam_core.runtime.data.index import SampleCheck, index_entries
from slam_core.runtime.data.manifest import read_manifest
from slam_core.runtime.data.sampler import BatchPlanner, BatchRule

if TYPE_CHECKING:
    from slam_core.components import Modality, TaskHead
    from slam_core.spec import DataSpec, PipelineSpec

logger = logging.getLogger(__name__)

Split = Literal["train", "valid", "test"]
STATE_KEYS = frozenset({"epoch", "batches", "world_size", "fingerprint"})


class Batches:
    """One rank's batches of one split (a :class:`~slam_core.runtime.data.batch.ResumableBatches`).

    ``set_epoch`` picks the epoch's plan (reshuffled from the seed when shuffling); iteration
    loads the rank's batches of that plan in DataLoader workers. ``state_dict`` records the
    epoch and how many of its batches were consumed; after ``load_state_dict`` the next
    iteration resumes at the following batch (later iterations start at the epoch's beginning).
    Samples skipped as bad are listed in ``Batch.skipped``: those found in the index on rank 0's
    first batch of each epoch, those found while loading on the next batch yielded (a batch
    whose samples were all skipped is dropped). :attr:`skip_reasons` maps each skipped key to why:
    those of ``skipped`` when it is a mapping, and those found while loading once their batch is read.
    """

    def __init__(
        self,
        dataset: SampleDataset,
        planner: BatchPlanner,
        *,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        skipped: Sequence[str] | Mapping[str, str] = (),
    ):
        if len(planner.durations) != len(dataset):
            raise ValueError(f"the planner has {len(planner.durations)} samples, the dataset {len(dataset)}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if num_workers > 0:
            _check_picklable(dataset.preprocessor)
        self.dataset, self.planner = dataset, planner
        self.rank, self.world_size = rank, world_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.skipped = list(skipped)
        self.skip_reasons: dict[str, str] = dict(skipped) if isinstance(skipped, Mapping) else {}
        self.fingerprint = _fingerprint([entry.key for entry in dataset.entries], planner)
        self._epoch = self._position = self._resume_at = 0
        self._plan_cache: tuple[int, list[list[int]]] | None = None

    @property
    def epoch(self) -> int:
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Select ``epoch``; a different epoch than the current one discards the progress within it."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self._epoch:
            self._epoch, self._position, self._resume_at = epoch, 0, 0

    def __len__(self) -> int:
        """Batches in this rank's share of the current epoch (with max_batch_seconds it varies by epoch)."""
        return len(self._plan())

    def __iter__(self) -> Iterator[Batch]:
        plan = self._plan()
        start, self._resume_at = self._resume_at, 0
        self._position = start
        pending = list(self.skipped) if start == 0 and self.rank == 0 else []
        if start < len(plan):
            self.dataset.epoch = self._epoch  # the workers fork with it: augmentation seeds follow the epoch
            loader = DataLoader(
                self.dataset,
                batch_sampler=plan[start:],
                num_workers=self.num_workers,
                collate_fn=collate,
                pin_memory=self.pin_memory,
            )
            iterator = iter(loader)
            try:
                for position, fields in enumerate(iterator, start + 1):
                    self._position = position
                    pending += fields.pop("skipped")
                    self.skip_reasons.update(fields.pop("skip_reasons"))
                    if fields["keys"]:
                        yield Batch(**fields, skipped=pending)
                        pending = []
            finally:
                _stop_workers(iterator)
        if pending:
            logger.warning("%d bad samples were skipped at the end of epoch %d: %s", len(pending), self._epoch, pending)

    def state_dict(self) -> dict[str, Any]:
        """The epoch and the number of its batches consumed, plus checks for :meth:`load_state_dict`."""
        return {
            "epoch": self._epoch,
            "batches": self._position,
            "world_size": self.world_size,
            "fingerprint": self.fingerprint,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume where ``state`` was taken: the next iteration starts at its next batch."""
        if set(state) != STATE_KEYS:
            raise ValueError(f"not a data state: expected keys {sorted(STATE_KEYS)}, got {sorted(state)}")
        if state["world_size"] != self.world_size:
            raise ValueError(
                f"the data state was saved with world_size {state['world_size']}, this run has {self.world_size}; "
                "resume with the same number of ranks, or the batches would differ"
            )
        if state["fingerprint"] != self.fingerprint:
            raise ValueError(
                "the data state was saved for another manifest, seed or batching settings; "
                "resuming would not continue the same batches"
            )
        self._epoch = int(state["epoch"])
        self._position = self._resume_at = int(state["batches"])

    def _plan(self) -> list[list[int]]:
        if self._plan_cache is None or self._plan_cache[0] != self._epoch:
            self._plan_cache = (self._epoch, self.planner.batches(self._epoch, self.rank, self.world_size))
        return self._plan_cache[1]


def _stop_workers(iterator: Iterator[Any]) -> None:
    """Stop a DataLoader iterator's worker processes now.

    Left to the garbage collector (after an error, or an epoch abandoned mid-way) their
    shutdown waits out 5 s timeouts per worker, or runs inside a forked worker of the next
    loader; torch has no public call for this, hence the private one.
    """
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()


def _check_picklable(preprocessor: Any) -> None:
    try:
        pickle.dumps(preprocessor)
    except Exception as exc:
        raise TypeError(
            f"the encoder's preprocessor {preprocessor!r} cannot be pickled for DataLoader workers ({exc}); "
            "make it a module-level class holding only settings, or set data.num_workers: 0"
        ) from None


def _fingerprint(keys: Sequence[str], planner: BatchPlanner) -> str:
    digest = hashlib.sha256()
    for key, duration in zip(keys, planner.durations, strict=True):
        digest.update(f"{key}\t{duration!r}\n".encode())
    digest.update(repr((planner.rule, planner.shuffle, planner.seed, planner.buckets.tolist())).encode())
    return digest.hexdigest()[:16]


def manifest_batches(
    manifest: str | Path,
    preprocessor: Callable[[Any], Any],
    data: DataSpec,
    *,
    shuffle: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    modality: Modality = "audio",
    sample_problem: SampleCheck | None = None,
) -> Batches:
    """:class:`Batches` of one manifest, batched and checked as ``data`` says; ``modality`` is the encoder's,
    ``sample_problem`` the task head's check of each sample's fields (see :func:`index_entries`)."""
    entries = read_manifest(manifest)
    if not entries:
        raise ManifestError(f"{Path(manifest).absolute()}: the manifest holds no samples")
    index = index_entries(
        entries,
        max_duration_s=data.max_duration_s,
        bad_samples=data.bad_samples,
        modality=modality,
        sample_problem=sample_problem,
    )
    if not index.entries:
        raise DataError(f"{Path(manifest).absolute()}: no usable samples, all {len(entries)} are bad (see the log)")
    planner = BatchPlanner(
        index.durations,
        BatchRule(data.batch_size, data.max_batch_seconds),
        bucketing=data.bucketing,
        num_buckets=data.num_buckets,
        shuffle=shuffle,
        seed=seed,
    )
    dataset = SampleDataset(
        index.entries, preprocessor, skip_bad=data.bad_samples == "skip", modality=modality, seed=seed
    )
    return Batches(
        dataset,
        planner,
        rank=rank,
        world_size=world_size,
        num_workers=data.num_workers,
        pin_memory=torch.cuda.is_available(),
        skipped=index.skipped,
    )


def build_batches(
    spec: PipelineSpec,
    split: Split,
    preprocessor: Callable[[Any], Any],
    *,
    rank: int = 0,
    world_size: int = 1,
    seed: int | None = None,
    modality: Modality = "audio",
    task: TaskHead | None = None,
) -> Batches:
    """The batches of ``split`` for ``rank`` of ``world_size``, from the manifest named by ``spec.data``.

    ``preprocessor`` is ``model.preprocessor(training=split == "train")`` (or an encoder's), and
    ``modality`` what it reads (``model.modality``); the preprocessor is all the workers receive. Only
    ``train`` is shuffled (when ``data.shuffle``), from ``seed`` (default ``train.seed``) and
    the epoch; ``test`` batches are capped by ``infer.batch_size`` instead of ``data.batch_size``.
    ``task`` (``model.task``) checks each sample's fields when the manifest is indexed: a ``train`` or
    ``valid`` sample needs a target the head can read (:meth:`~slam_core.components.TaskHead.sample_problem`).
    """
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    data = spec.data
    manifest = getattr(data, f"{split}_manifest")
    if manifest is None:
        raise DataError(f"data.{split}_manifest is not set in the spec; give the path of the {split} manifest")
    if split == "test":
        data = data.model_copy(update={"batch_size": spec.infer.batch_size})
    return manifest_batches(
        manifest,
        preprocessor,
        data,
        shuffle=split == "train" and data.shuffle,
        seed=spec.train.seed if seed is None else seed,
        rank=rank,
        world_size=world_size,
        modality=modality,
        sample_problem=None if task is None else _sample_check(task, needs_target=split != "test"),
    )


def _sample_check(task: TaskHead, *, needs_target: bool) -> SampleCheck:
    return lambda fields: task.sample_problem(fields, needs_target=needs_target)
