"""Training checkpoints: written atomically, resumed exactly, pruned to the last k plus the best.

A checkpoint is a folder ``<run>/checkpoints/step-<N>/``::

    trainable.safetensors   every trainable parameter, full, by its name in SlamModel (what resume reads)
    adapter/                the PEFT adapter, written by the PEFT method's save() (peft's folder for LoRA)
    optimizer.pt            torch engines: the optimizer state keyed by parameter name
    zero-rank<r>.pt         deepspeed: rank r's ZeRO optimizer partition
    trainer.pt              LR schedule and loss-scaler state
    rank-<r>.pt             rank r's RNG states and data position
    state.json              step, epoch, engine, world size, validation metrics, trainable shapes

It is assembled in ``.tmp-step-<N>`` and renamed into place once complete and flushed, so a
crash leaves either the whole checkpoint or none (stray temporary folders are ignored).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slam_core.model import SlamModel
from slam_core.runtime.train import distributed, rng
from slam_core.runtime.train.distributed import Context
from slam_core.runtime.train.engines import Engine
from slam_core.runtime.train.io import CheckpointError, load_safetensors, load_torch, publish_dir, write_atomic
from slam_core.spec import TrainSpec

PREFIX = "step-"
TRAINABLE_FILE = "trainable.safetensors"
STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"
ADAPTER_DIR = "adapter"
BEST_FILE = "best.json"
#: Engines whose optimizer files are interchangeable.
OPTIMIZER_FORMATS = {"single": "torch", "ddp": "torch", "fsdp2": "torch", "deepspeed": "deepspeed"}


def rank_file(rank: int) -> str:
    return f"rank-{rank:05d}.pt"


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
        self.directory = Path(run_dir) / "checkpoints"
        self.train, self.context = train, context

    # finding ---------------------------------------------------------------------------

    def all(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
        return sorted(found, key=_step_of)

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    def best(self) -> Path | None:
        """The checkpoint with the best ``train.best_metric`` among those validated."""
        if self.train.best_metric is None:
            return None
        scored = []
        for path in self.all():
            value = (read_state(path).get("metrics") or {}).get(self.train.best_metric)
            if value is not None and math.isfinite(value):
                scored.append((value if self.train.best_mode == "min" else -value, _step_of(path), path))
        return min(scored)[2] if scored else None

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
        final = self.directory / f"{PREFIX}{step:08d}"
        temporary = self.directory / f".tmp-{final.name}"
        if self.context.is_main:
            shutil.rmtree(temporary, ignore_errors=True)
            temporary.mkdir(parents=True)
        distributed.barrier()
        trainable = engine.trainable_state()
        if self.context.is_main:
            from safetensors.torch import save_file

            save_file({name: t.contiguous() for name, t in trainable.items()}, temporary / TRAINABLE_FILE)
            if model.peft is not None:
                with _full_state_view(model, model.llm.model, trainable):
                    model.peft.save(model.llm.model, temporary / ADAPTER_DIR)
        engine.save_optimizer(temporary)
        torch.save({"rng": rng.capture(), "data": data_state}, temporary / rank_file(self.context.rank))
        if self.context.is_main:
            torch.save(
                {"scheduler": engine.scheduler_state(), "scaler": engine.scaler_state()}, temporary / TRAINER_FILE
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
            (temporary / STATE_FILE).write_text(json.dumps(state, indent=1))
        distributed.barrier()
        if self.context.is_main:
            publish_dir(temporary, final)
            self._prune()
        distributed.barrier()
        return final

    def _prune(self) -> None:
        """Keep the last ``train.keep_last`` checkpoints and the best; record the best in best.json."""
        found, best = self.all(), self.best()
        if self.train.keep_last is not None:
            for path in found[: -self.train.keep_last]:
                if path != best:
                    shutil.rmtree(path)
        for stray in self.directory.glob(".stale-*"):
            shutil.rmtree(stray, ignore_errors=True)
        record = {"metric": self.train.best_metric, "mode": self.train.best_mode, "checkpoint": None}
        if best is not None:
            record.update(checkpoint=best.name, value=read_state(best)["metrics"][self.train.best_metric])
        write_atomic(self.directory / BEST_FILE, json.dumps(record, indent=1).encode())

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
        trainable = load_safetensors(path / TRAINABLE_FILE, "trainable weights")
        _check_trainable(path / TRAINABLE_FILE, trainable, engine.trainable_shapes)
        engine.load_trainable_state(trainable)
        engine.load_optimizer(path)
        trainer = load_torch(path / TRAINER_FILE, "schedule and scaler state")
        engine.load_scheduler_state(trainer["scheduler"])
        engine.load_scaler_state(trainer["scaler"])
        own = load_torch(path / rank_file(self.context.rank), "RNG and data state")
        return ResumePoint(path, state["step"], state["epoch"], state["epoch_done"], own["data"], own["rng"])

    def _check_compatible(self, path: Path, state: dict[str, Any], engine: Engine) -> None:
        saved_format = OPTIMIZER_FORMATS.get(state.get("engine"))
        if saved_format != OPTIMIZER_FORMATS[engine.name]:
            raise CheckpointError(
                f"{path / STATE_FILE}: written by engine {state.get('engine')!r}, whose optimizer state engine "
                f"{engine.name!r} cannot read; resume with train.engine {state.get('engine')!r}"
            )
        if state.get("world_size") != self.context.world_size:
            raise CheckpointError(
                f"{path / STATE_FILE}: written by {state.get('world_size')} ranks, this run has "
                f"{self.context.world_size}; the data positions (and ZeRO partitions) are per rank"
            )


def read_state(path: Path) -> dict[str, Any]:
    """The ``state.json`` of a checkpoint folder."""
    file = path / STATE_FILE
    try:
        state = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; {path} is not a complete checkpoint") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: unreadable: {exc}") from None
    missing = {"step", "epoch", "epoch_done", "engine", "world_size"} - set(state)
    if missing:
        raise CheckpointError(f"{file}: lacks {sorted(missing)}")
    return state


def _check_trainable(file: Path, saved: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> None:
    problems = []
    missing, unexpected = sorted(set(shapes) - set(saved)), sorted(set(saved) - set(shapes))
    if missing:
        problems.append(f"missing {len(missing)} trainable tensors of this model, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"has {len(unexpected)} tensors this model does not train, e.g. {unexpected[:3]}")
    wrong = [n for n in sorted(set(saved) & set(shapes)) if tuple(saved[n].shape) != tuple(shapes[n])]
    if wrong:
        shown = "; ".join(
            f"{n} has shape {tuple(saved[n].shape)}, the model's is {tuple(shapes[n])}" for n in wrong[:3]
        )
        problems.append(f"{len(wrong)} tensors have another shape, e.g. {shown}")
    if problems:
        raise CheckpointError(
            f"{file}: does not match this model's trainable parameters (was the spec changed?): " + "; ".join(problems)
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


def _step_of(path: Path) -> int:
    try:
        return int(path.name[len(PREFIX) :])
    except ValueError:
        return -1
