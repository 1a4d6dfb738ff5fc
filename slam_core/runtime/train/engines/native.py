"""Engines built on torch alone: one process, DDP, and FSDP2 (``fully_shard``).

All three keep the optimizer state in torch's own format through
``torch.distributed.checkpoint.state_dict`` (keyed by parameter name, gathered to full
tensors), so a checkpoint of one resumes under another.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from slam_core.runtime.checkpoints.io import load_torch
from slam_core.runtime.checkpoints.layout import OPTIMIZER_FILE
from slam_core.runtime.train.engines.base import Engine, StepResult
from slam_core.runtime.train.optim import build_optimizer, build_scheduler, parameter_groups, trainable_parameters


class SingleEngine(Engine):
    """One process on one device."""

    name = "single"

    def prepare(self, total_steps: int) -> None:
        self.model.to(self.device)
        if self.train_spec.compile:
            compile_blocks(self.model)
        self.module = self.wrap(self.model)
        self.params = list(trainable_parameters(self.model).values())  # after wrapping: FSDP2 replaces them
        groups = parameter_groups(self.model, self.train_spec.weight_decay)
        self.optimizer = build_optimizer(groups, self.train_spec, self.device)
        self.scheduler = build_scheduler(self.optimizer, self.train_spec, total_steps)
        self.scaler = self.make_scaler()

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def make_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype is torch.float16)

    def micro_step(self, sync: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self) -> StepResult:
        self.scaler.unscale_(self.optimizer)
        max_norm = self.train_spec.grad_clip or math.inf
        norm = _full(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if not math.isfinite(norm) and not self.scaler.is_enabled():
            self.discard_gradients()
            return StepResult(False, norm)
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        applied = self.scaler.get_scale() >= scale  # the scaler lowers its scale when it skips a step
        self.optimizer.zero_grad(set_to_none=True)
        if applied:
            self.scheduler.step()
        return StepResult(applied, norm)

    def discard_gradients(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {name: _full_tensor(p).cpu().clone() for name, p in trainable_parameters(self.model).items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        params = trainable_parameters(self.model)
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))

    def save_optimizer(self, directory: Path) -> None:
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_optimizer_state_dict(self.model, self.optimizer, options=options)
        if self.context.is_main:
            torch.save(state, directory / OPTIMIZER_FILE)

    def load_optimizer(self, directory: Path) -> None:
        state = load_torch(directory / OPTIMIZER_FILE, "optimizer state")
        options = StateDictOptions(full_state_dict=True)
        set_optimizer_state_dict(self.model, self.optimizer, optim_state_dict=state, options=options)

    def scaler_state(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler.is_enabled() else None

    def load_scaler_state(self, state: dict | None) -> None:
        if state is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


class DDPEngine(SingleEngine):
    """``DistributedDataParallel``; gradients are all-reduced on the last micro-batch of a step only."""

    name = "ddp"

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def micro_step(self, sync: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if sync else self.module.no_sync()

    def forward(self, batch, text):
        if torch.is_grad_enabled():
            return super().forward(batch, text)
        with self.autocast():  # validation: no gradients to reduce, so no DDP (and none of its collectives)
            return self.model(batch.features, batch.feature_lengths, text)


class FSDP2Engine(SingleEngine):
    """``fully_shard`` on every block named by a ``_no_split_modules`` list (transformers' convention), then the root.

    Frozen 0-dim parameters, which FSDP2 cannot shard, stay replicated; a trainable one is refused.
    """

    name = "fsdp2"
    sharded = True

    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        scalars = {name: p for name, p in model.named_parameters() if p.ndim == 0}
        trainable_scalars = [name for name, p in scalars.items() if p.requires_grad]
        if trainable_scalars:
            raise ValueError(f"engine fsdp2 cannot shard trainable 0-dim parameters {trainable_scalars}; use ddp")
        mesh = init_device_mesh(self.device.type, (self.context.world_size,))
        for block in repeated_blocks(model):
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh, ignored_params=set(scalars.values()))
        return model

    def make_scaler(self) -> torch.amp.GradScaler:
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

        return ShardedGradScaler(self.device.type, enabled=self.dtype is torch.float16)

    def micro_step(self, sync: bool) -> contextlib.AbstractContextManager:
        self.module.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def decoding(self):
        self.model.unshard()  # the root's parameters (encoder, projector, embeddings); blocks unshard themselves
        try:
            yield self.model
        finally:
            self.model.reshard()

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        from torch.distributed.tensor import DTensor, distribute_tensor

        params = trainable_parameters(self.model)
        with torch.no_grad():
            for name, value in state.items():
                param = params[name]
                if isinstance(param, DTensor):
                    value = distribute_tensor(value.to(param.device, param.dtype), param.device_mesh, param.placements)
                    param.to_local().copy_(value.to_local())
                else:
                    param.copy_(value.to(param.device, param.dtype))


def _full_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a DTensor shard (a collective), or the tensor itself."""
    full = getattr(tensor, "full_tensor", None)
    return (full() if full is not None else tensor).detach()


def _full(norm: torch.Tensor) -> float:
    return float(_full_tensor(norm))


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks named by any ``_no_split_modules`` list inside ``model`` (transformers' decoder and
    encoder layers), outermost first; ``model`` itself is never one."""
    names = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    return [module for module in model.modules() if module is not model and type(module).__name__ in names]


def compile_blocks(model: nn.Module) -> None:
    """``torch.compile`` each repeated block in place (regional compilation: one graph serves every layer
    of a kind, so compiling costs one layer's time, and lengths vary without recompiling)."""
    for block in repeated_blocks(model):
        block.compile(dynamic=True)
