"""Training checkpoints: written atomically, resumed exactly, pruned to the last k plus the best.

A checkpoint is a folder ``<run>/checkpoints/step-<N>/`` laid out as
:mod:`slam_core.runtime.checkpoints.layout` says. It is assembled in ``.tmp-step-<N>`` and
renamed into place once complete and flushed, so a crash leaves either the whole checkpoint
or none; pruning renames a checkpoint to a tombstone before deleting it, and a run's start
sweeps what a crash left (:func:`~slam_core.runtime.checkpoints.layout.sweep`). A write that
fails (a full disk, a read-only folder) removes its temporary folder and is a
:class:`~slam_core.errors.CheckpointError` naming the folder and the fix.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError
from slam_core.model import SlamModel
from slam_core.runtime.checkpoints import layout
from slam_core.runtime.checkpoints.io import load_torch, publish_dir, write_atomic, write_failure
from slam_core.runtime.checkpoints.layout import read_state
from slam_core.runtime.train import distributed, rng
from slam_core.runtime.train.distributed import Context
from slam_core.runtime.train.engines import Engine
from slam_core.spec import TrainSpec

#: Engines whose optimizer files are interchangeable.
OPTIMIZER_FORMATS = {"single": "torch", "ddp": "torch", "fsdp2": "torch", "deepspeed": "deepspeed"}


@dataclass
class ResumePoint:
    """Where a resumed run continues."""

    path: Path
    step: int
    epoch: int
    epoch_done: bool  # the checkpoint was taken after the epoch's last batch
    data_state: dict[str, Any] | None
    rng_state: dict[str, Any]


class Checkpointer:
    """Saves, finds, loads and prunes the checkpoints of one run folder."""

    def __init__(self, run_dir: Path, train: TrainSpec, context: Context):
        self.directory = Path(run_dir) / layout.CHECKPOINTS_DIR
        self.train, self.context = train, context
        if context.is_main:
            layout.sweep(self.directory)

    # finding ---------------------------------------------------------------------------

    def all(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        return layout.checkpoints(self.directory)

    def latest(self) -> Path | None:
        return layout.latest(self.directory)

    def best(self) -> Path | None:
        """The checkpoint with the best ``train.best_metric`` among those validated."""
        return layout.best(self.directory, self.train.best_metric, self.train.best_mode)

    # saving ----------------------------------------------------------------------------

    def save(
        self,
        engine: Engine,
        model: SlamModel,
        *,
        step: int,
        epoch: int,
        epoch_done: bool,
        data_state: dict[str, Any] | None,
        metrics: dict[str, float] | None,
    ) -> Path:
        """Write a checkpoint of the current state (every rank calls this) and prune old ones."""
        final = layout.step_folder(self.directory, step)
        temporary = self.directory / f"{layout.TEMPORARY_PREFIX}{final.name}"
        try:
            self._write(temporary, engine, model, step=step, epoch=epoch, epoch_done=epoch_done,
                        data_state=data_state, metrics=metrics)  # fmt: skip
            distributed.barrier()
            if self.context.is_main:
                publish_dir(temporary, final)
                self._prune()
        except Exception as exc:
            reason = write_failure(temporary, exc)
            if reason is None:
                raise
            shutil.rmtree(temporary, ignore_errors=True)
            last = self.latest()
            raise CheckpointError(
                f"{final}: cannot write the checkpoint: {reason}; then resume (the last complete checkpoint, "
                f"{last.name if last else 'none yet'}, is untouched)"
            ) from exc
        distributed.barrier()
        return final

    def _write(
        self, temporary: Path, engine: Engine, model: SlamModel, *, step, epoch, epoch_done, data_state, metrics
    ):
        """Every part of a checkpoint, written into ``temporary`` (every rank writes its own files)."""
        if self.context.is_main:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
        distributed.barrier()
        trainable = engine.trainable_state()
        if self.context.is_main:
            from safetensors.torch import save_file

            save_file({name: t.contiguous() for name, t in trainable.items()}, temporary / layout.TRAINABLE_FILE)
            if model.peft is not None:
                with _full_state_view(model, model.llm.model, trainable):
                    model.peft.save(model.llm.model, temporary / layout.ADAPTER_DIR)
        engine.save_optimizer(temporary)
        torch.save({"rng": rng.capture(), "data": data_state}, temporary / layout.rank_file(self.context.rank))
        if self.context.is_main:
            torch.save(
                {"scheduler": engine.scheduler_state(), "scaler": engine.scaler_state()},
                temporary / layout.TRAINER_FILE,
            )
            state = {
                "step": step,
                "epoch": epoch,
                "epoch_done": epoch_done,
                "engine": engine.name,
                "world_size": self.context.world_size,
                "metrics": metrics,
                "trainable": {name: list(shape) for name, shape in engine.trainable_shapes.items()},
            }
            (temporary / layout.STATE_FILE).write_text(json.dumps(state, indent=1))

    def record_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """Add a validation's ``metrics`` to the saved checkpoint of ``step`` (validated after it was saved),
        so that it competes for best; then prune again."""
        if self.context.is_main:
            file = layout.step_folder(self.directory, step) / layout.STATE_FILE
            state = read_state(file.parent)
            write_atomic(file, json.dumps(state | {"metrics": metrics}, indent=1).encode())
            self._prune()
        distributed.barrier()

    def _prune(self) -> None:
        """Keep the last ``train.keep_last`` checkpoints and the best; record the best in best.json."""
        found, best = self.all(), self.best()
        # best.json first: it never names a checkpoint that is gone, whenever a crash comes
        record = {"metric": self.train.best_metric, "mode": self.train.best_mode, "checkpoint": None}
        if best is not None:
            record.update(checkpoint=best.name, value=read_state(best)["metrics"][self.train.best_metric])
        write_atomic(self.directory / layout.BEST_FILE, json.dumps(record, indent=1).encode())
        if self.train.keep_last is not None:
            for path in found[: -self.train.keep_last]:
                if path != best:
                    layout.remove(path)

    # loading ---------------------------------------------------------------------------

    def load(self, path: Path, engine: Engine) -> ResumePoint:
        """Restore the model's trainable weights, the optimizer, schedule and scaler from ``path``.

        The RNG state and data position are returned for the caller to apply when it resumes.
        """
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: not a checkpoint folder")
        state = read_state(path)
        self._check_compatible(path, state, engine)
        trainable = layout.read_trainable(path)
        layout.check_tensors(path / layout.TRAINABLE_FILE, trainable, engine.trainable_shapes, complete=True)
        layout.check_finite(path / layout.TRAINABLE_FILE, trainable)
        engine.load_trainable_state(trainable)
        engine.load_optimizer(path)
        trainer = load_torch(path / layout.TRAINER_FILE, "schedule and scaler state")
        engine.load_scheduler_state(trainer["scheduler"])
        engine.load_scaler_state(trainer["scaler"])
        own = load_torch(path / layout.rank_file(self.context.rank), "RNG and data state")
        return ResumePoint(path, state["step"], state["epoch"], state["epoch_done"], own["data"], own["rng"])

    def _check_compatible(self, path: Path, state: dict[str, Any], engine: Engine) -> None:
        saved_format = OPTIMIZER_FORMATS.get(state.get("engine"))
        if saved_format != OPTIMIZER_FORMATS[engine.name]:
            raise CheckpointError(
                f"{path / layout.STATE_FILE}: written by engine {state.get('engine')!r}, whose optimizer state engine "
                f"{engine.name!r} cannot read; resume with train.engine {state.get('engine')!r}"
            )
        if state.get("world_size") != self.context.world_size:
            raise CheckpointError(
                f"{path / layout.STATE_FILE}: written by {state.get('world_size')} ranks, this run has "
                f"{self.context.world_size}; the data positions (and ZeRO partitions) are per rank"
            )


@contextlib.contextmanager
def _full_state_view(model: SlamModel, module: torch.nn.Module, full: dict[str, torch.Tensor]) -> Iterator[None]:
    """While open, ``module.state_dict()`` shows the gathered tensors ``full`` (named as in ``model``)
    in place of sharded ones, so that a PEFT method's own save() writes whole adapters under any engine."""
    prefix = next(name for name, child in model.named_modules() if child is module) + "."

    def substitute(_module, state_dict, state_prefix, _metadata):
        for key in state_dict:
            name = prefix + key[len(state_prefix) :] if key.startswith(state_prefix) else None
            if name in full:
                state_dict[key] = full[name]

    handle = module.register_state_dict_post_hook(substitute)
    try:
        yield
    finally:
        handle.remove()
