"""The training loop: accumulation windows, a token-weighted loss, the NaN policy, validation and checkpoints.

One optimizer step consumes a window of ``train.grad_accum`` micro-batches per rank. Each
micro-batch's loss is weighted by its share of all target tokens in the window across ranks
(``loss × tokens × world / window_tokens``; engines average gradients over ranks), so a step's
gradient is that of the mean token loss over the whole global batch, whatever the split into
ranks and micro-batches.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import TrainingError
from slam_core.model import SlamModel, TextInputs
from slam_core.runtime.checkpoints.layout import read_state
from slam_core.runtime.data.batch import Batch, ResumableBatches
from slam_core.runtime.infer.service import Scorer
from slam_core.runtime.train import distributed, rng
from slam_core.runtime.train.checkpoint import Checkpointer, ResumePoint
from slam_core.runtime.train.distributed import Context
from slam_core.runtime.train.encoder_cache import EncoderCaches
from slam_core.runtime.train.engines import Engine
from slam_core.runtime.train.monitor import Monitor
from slam_core.runtime.train.validate import validate
from slam_core.spec import PipelineSpec


class NonFiniteLossError(TrainingError):
    """A NaN/inf loss (or gradient) under ``nan_policy: error``, or too many skipped steps in a row."""


@dataclass(frozen=True)
class StepInfo:
    """What the ``on_step`` callback receives after every optimizer step (on every rank)."""

    step: int
    epoch: int
    loss: float
    token_accuracy: float
    lr: float
    grad_norm: float | None


@dataclass
class TrainResult:
    """The outcome of :func:`slam_core.runtime.train.train`."""

    run_dir: Path
    step: int  # optimizer steps taken in the whole run (resumed ones included)
    epoch: int  # the epoch training stopped in
    losses: dict[int, float] = field(default_factory=dict)  # step -> train loss, for the steps run by this call
    validations: list[dict[str, float]] = field(default_factory=list)  # {"step": ..., metric: value}
    skipped_steps: int = 0
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    resumed_from: Path | None = None
    model: SlamModel | None = field(default=None, repr=False)  # the trained model (sharded under fsdp2/ZeRO-3)


class Trainer:
    """Runs the epochs of one training run on an engine that is already prepared."""

    def __init__(
        self,
        *,
        spec: PipelineSpec,
        model: SlamModel,
        engine: Engine,
        context: Context,
        train_batches: ResumableBatches,
        valid_batches: ResumableBatches | None,
        checkpointer: Checkpointer,
        monitor: Monitor,
        total_steps: int,
        scorer: Scorer | None = None,
        cache: EncoderCaches | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
    ):
        self.spec, self.train_spec = spec, spec.train
        self.model, self.engine, self.context = model, engine, context
        self.train_batches, self.valid_batches = train_batches, valid_batches
        self.checkpointer, self.monitor = checkpointer, monitor
        self.total_steps, self.scorer, self.cache, self.on_step = total_steps, scorer, cache, on_step
        self.step = self.epoch = 0
        self.data_state: dict[str, Any] | None = None  # the train data's position after the last window
        self.resume_data: dict[str, Any] | None = None  # where a resumed run's first epoch continues
        self.consecutive_skips = 0
        self.best_value: float | None = None
        self.last_saved = self.last_validated = -1
        self.result = TrainResult(run_dir=checkpointer.directory.parent, step=0, epoch=0)

    # the run ---------------------------------------------------------------------------

    def run(self, start: ResumePoint | None) -> TrainResult:
        epochs = self.train_spec.epochs
        if start is not None:
            self._resume(start)
        with self.cache.attach() if self.cache else contextlib.nullcontext():
            self.engine.train(True)
            stopped = self.step >= self.total_steps
            while self.epoch < epochs and not stopped:
                self.train_batches.set_epoch(self.epoch)
                if self.resume_data is not None:
                    self.train_batches.load_state_dict(self.resume_data)
                    self.resume_data = None
                stopped = self._run_epoch()
                if not stopped:
                    self._end_of_epoch()
                    self.epoch += 1
            finished_epochs = not stopped
            self.epoch = min(self.epoch, epochs - 1)
            if self.valid_batches is not None and self.last_validated != self.step:
                metrics = self._validate()
                if self.last_saved == self.step:  # saved before this validation: it must count for best
                    self._improved(metrics)
                    self.checkpointer.record_metrics(self.step, metrics)
            if self.last_saved != self.step:
                self._save(epoch_done=finished_epochs)
        self.result.step, self.result.epoch, self.result.model = self.step, self.epoch, self.model
        self.result.last_checkpoint = self.checkpointer.latest()
        self.result.best_checkpoint = self.checkpointer.best()
        return self.result

    def _resume(self, start: ResumePoint) -> None:
        self.step = self.last_saved = start.step
        self.epoch = start.epoch + int(start.epoch_done)
        self.resume_data = None if start.epoch_done else start.data_state
        if read_state(start.path).get("metrics") is not None:
            self.last_validated = start.step
        best = self.checkpointer.best()
        if best is not None:
            self.best_value = read_state(best)["metrics"][self.train_spec.best_metric]
        self.result.resumed_from = start.path
        rng.restore(start.rng_state)  # last: nothing between here and the next step draws random numbers

    def _run_epoch(self) -> bool:
        """Train until the epoch's batches run out (False) or ``total_steps`` is reached (True)."""
        iterator = iter(self.train_batches)
        while True:
            window = self._fetch(iterator)
            window_tokens = self._agree(window)
            if window_tokens is None:
                return False
            self.data_state = self.train_batches.state_dict()
            outcome = self._train_window(window, window_tokens)
            if outcome is not None:
                self.step += 1
                self._after_step(*outcome)
            if self.step >= self.total_steps:
                return True

    def _fetch(self, iterator: Iterator[Batch]) -> list[tuple[Batch, TextInputs]]:
        """The next ``grad_accum`` micro-batches (fewer at the epoch's end) and their text.

        Data loading never changes the training RNG (a DataLoader draws its seed from it),
        so a resumed run draws the same dropout masks as an uninterrupted one.
        """
        batches = []
        with rng.isolated():
            for _ in range(self.train_spec.grad_accum):
                batch = next(iterator, None)
                if batch is None:
                    break
                batches.append(batch)
        return [(batch, self.model.text_inputs(batch.samples)) for batch in batches]

    def _agree(self, window: list[tuple[Batch, TextInputs]]) -> int | None:
        """All target tokens of the window over all ranks; ``None`` when every rank is out of batches."""
        tokens = sum(len(target) for _, text in window for target in text.target_ids)
        counts = distributed.all_gather((len(window), tokens))
        sizes = {n for n, _ in counts}
        if len(sizes) > 1:
            raise RuntimeError(
                f"epoch {self.epoch}: the ranks have {[n for n, _ in counts]} micro-batches left for one step; "
                "the data must give every rank the same number of batches per epoch"
            )
        return None if sizes == {0} else sum(t for _, t in counts)

    def _train_window(self, window: list[tuple[Batch, TextInputs]], window_tokens: int) -> tuple | None:
        """Forward and backward every micro-batch, then step; ``None`` when the step was skipped."""
        weight = self.context.world_size / window_tokens
        totals = [0.0, 0.0, 0.0]  # loss × tokens, tokens, correct tokens (this rank)
        for index, (batch, text) in enumerate(window):
            batch = batch.to(self.engine.device)
            with self.engine.micro_step(sync=index == len(window) - 1), self._cache_batch(batch):
                out = self.engine.forward(batch, text)
                finite = bool(torch.isfinite(out.loss.detach()))
                if distributed.all_sum([float(not finite)], self.engine.device)[0]:
                    self.engine.discard_gradients()
                    return self._non_finite("loss", window)
                self.engine.backward(out.loss * (out.target_tokens * weight))
            tokens = out.target_tokens
            totals = [
                totals[0] + float(out.loss.detach()) * tokens,
                totals[1] + tokens,
                totals[2] + float(out.token_accuracy) * tokens,
            ]
        result = self.engine.step()
        if not result.applied:
            if (
                result.grad_norm is not None
                and not math.isfinite(result.grad_norm)
                and self.engine.dtype is not torch.float16
            ):
                return self._non_finite("gradient", window)
            self.monitor.event(self.step, "step skipped by the fp16 loss scaler (overflow)")
            return None
        self.consecutive_skips = 0
        loss_sum, tokens, correct = distributed.all_sum(totals, self.engine.device)
        return loss_sum / tokens, correct / tokens, result.grad_norm

    def _non_finite(self, what: str, window: list[tuple[Batch, TextInputs]]) -> None:
        keys = [key for batch, _ in window for key in batch.keys]
        where = f"step {self.step + 1} (epoch {self.epoch}, samples {keys[:8]}{'...' if len(keys) > 8 else ''})"
        if self.train_spec.nan_policy == "error":
            raise NonFiniteLossError(
                f"non-finite {what} at {where}; set train.nan_policy: skip_batch to skip such steps"
            )
        self.consecutive_skips += 1
        self.result.skipped_steps += 1
        self.monitor.event(self.step, f"non-finite {what}: skipped the batches of {where}")
        if self.consecutive_skips > self.train_spec.max_consecutive_skips:
            raise NonFiniteLossError(
                f"{self.consecutive_skips} steps in a row had a non-finite {what} (last at {where}), "
                f"more than train.max_consecutive_skips={self.train_spec.max_consecutive_skips}; "
                "the model has diverged or the data is broken"
            )
        return None

    def _after_step(self, loss: float, accuracy: float, grad_norm: float | None) -> None:
        spec = self.train_spec
        self.result.losses[self.step] = loss
        values = {"loss": loss, "token_accuracy": accuracy, "lr": self.engine.lr}
        if grad_norm is not None:
            values["grad_norm"] = grad_norm
        self.monitor.train_step(self.step, values, log=self.step % spec.log_every_steps == 0)
        if self.on_step is not None:
            self.on_step(StepInfo(self.step, self.epoch, loss, accuracy, self.engine.lr, grad_norm))
        metrics = None
        if spec.eval_every_steps and self.step % spec.eval_every_steps == 0 and self.valid_batches is not None:
            metrics = self._validate()
        if (spec.save_every_steps and self.step % spec.save_every_steps == 0) or self._improved(metrics):
            self._save(epoch_done=False, metrics=metrics)

    def _end_of_epoch(self) -> None:
        metrics = None
        if self.train_spec.eval_every_steps is None and self.valid_batches is not None:
            metrics = self._validate()
        if self.train_spec.save_every_steps is None or self._improved(metrics):
            self._save(epoch_done=True, metrics=metrics)

    # validation and checkpoints --------------------------------------------------------

    def _validate(self) -> dict[str, float]:
        self.valid_batches.set_epoch(0)
        metrics = validate(
            self.engine,
            self.model,
            self.valid_batches,
            infer=self.spec.infer,
            scorer=self.scorer,
            cache=self.cache,
            sharded=self.engine.sharded,
        )
        self.last_validated = self.step
        self.result.validations.append({"step": self.step, **metrics})
        self.monitor.validation(self.step, metrics)
        return metrics

    def _improved(self, metrics: dict[str, float] | None) -> bool:
        """Whether ``metrics`` beat the best so far on ``train.best_metric`` (and record it)."""
        name = self.train_spec.best_metric
        if metrics is None or name is None:
            return False
        if name not in metrics:
            raise KeyError(f"train.best_metric {name!r} is not a validation metric; these are: {sorted(metrics)}")
        value = metrics[name]
        better = self.best_value is None or (
            value < self.best_value if self.train_spec.best_mode == "min" else value > self.best_value
        )
        if better and math.isfinite(value):
            self.best_value = value
            return True
        return False

    def _save(self, *, epoch_done: bool, metrics: dict[str, float] | None = None) -> None:
        if metrics is None and self.last_validated == self.step and self.result.validations:
            metrics = {k: v for k, v in self.result.validations[-1].items() if k != "step"}
        self.checkpointer.save(
            self.engine,
            self.model,
            step=self.step,
            epoch=self.epoch,
            epoch_done=epoch_done,
            data_state=None if epoch_done else self.data_state,
            metrics=metrics,
        )
        self.last_saved = self.step

    def _cache_batch(self, batch: Batch) -> contextlib.AbstractContextManager:
        return self.cache.batch(batch.samples) if self.cache else contextlib.nullcontext()
