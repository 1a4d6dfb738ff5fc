"""What every engine provides: forward, backward, step, and its part of a checkpoint."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from slam_core.model import SlamModel, SlamOutput, TextInputs
from slam_core.runtime.data.batch import Batch
from slam_core.runtime.train.distributed import Context
from slam_core.runtime.train.optim import trainable_parameters
from slam_core.runtime.train.precision import autocast, autocast_dtype
from slam_core.spec import PipelineSpec


@dataclass(frozen=True)
class StepResult:
    """The outcome of one optimizer step."""

    applied: bool  # False when the step was skipped (fp16 overflow, non-finite gradients)
    grad_norm: float | None  # before clipping


class Engine(abc.ABC):
    """Wraps a :class:`SlamModel` for one way of training; the model does not know which.

    The loss handed to :meth:`backward` is already normalised for the whole optimizer step
    (see :mod:`slam_core.runtime.train.loop`), and every engine averages gradients over ranks, so
    engines differ only in how they shard, synchronise and save.
    """

    name: str
    #: Whether parameters are sharded, so that every rank must run the same forward passes.
    sharded: bool = False

    def __init__(self, model: SlamModel, spec: PipelineSpec, context: Context):
        self.model, self.spec, self.context = model, spec, context
        self.train_spec = spec.train
        self.device = context.device
        self.dtype = autocast_dtype(spec.train.dtype, context.device)
        self.module: nn.Module = model
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.trainable_shapes = {name: tuple(p.shape) for name, p in trainable_parameters(model).items()}

    @abc.abstractmethod
    def prepare(self, total_steps: int) -> None:
        """Move and wrap the model, then build the optimizer and the LR schedule."""

    def forward(self, batch: Batch, text: TextInputs) -> SlamOutput:
        with self.autocast():
            return self.module(batch.features, batch.feature_lengths, text)

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.dtype)

    @abc.abstractmethod
    def micro_step(self, sync: bool) -> contextlib.AbstractContextManager:
        """Context for one micro-batch's forward and backward; ``sync=False`` defers the gradient reduction."""

    @abc.abstractmethod
    def backward(self, loss: torch.Tensor) -> None: ...

    @abc.abstractmethod
    def step(self) -> StepResult:
        """Clip, step the optimizer and the schedule, clear the gradients."""

    @abc.abstractmethod
    def discard_gradients(self) -> None:
        """Drop the gradients accumulated so far (a skipped step)."""

    def train(self, mode: bool = True) -> None:
        self.module.train(mode)

    @contextlib.contextmanager
    def decoding(self) -> Iterator[SlamModel]:
        """The model, ready for calls other than ``forward`` (``generate``)."""
        yield self.model

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    # checkpoint parts -------------------------------------------------------------------

    @abc.abstractmethod
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Full (unsharded) CPU copies of the trainable parameters; a collective call."""

    @abc.abstractmethod
    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        """Set the trainable parameters from full tensors (every rank passes the same ``state``)."""

    @abc.abstractmethod
    def save_optimizer(self, directory: Path) -> None:
        """Write the optimizer state into ``directory`` (a collective call; ranks may each write)."""

    @abc.abstractmethod
    def load_optimizer(self, directory: Path) -> None:
        """Read what :meth:`save_optimizer` wrote."""

    def scheduler_state(self) -> dict:
        return self.scheduler.state_dict()

    def load_scheduler_state(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)

    def scaler_state(self) -> dict | None:
        return None

    def load_scaler_state(self, state: dict | None) -> None:
        return None
