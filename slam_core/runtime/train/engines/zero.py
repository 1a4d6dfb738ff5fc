"""DeepSpeed ZeRO stage 1, 2 or 3, with a config built from the spec.

The optimizer is the same torch AdamW (and parameter groups) as the other engines, handed to
``deepspeed.initialize``, which shards it; mixed precision is DeepSpeed's ``torch_autocast``
(autocast with fp32 master weights, as elsewhere). The optimizer state is saved per rank as
the ZeRO optimizer's own ``state_dict`` and read back with ``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError
from slam_core.runtime.checkpoints.io import load_torch
from slam_core.runtime.checkpoints.layout import zero_file, zero_files
from slam_core.runtime.train.engines.base import Engine, StepResult
from slam_core.runtime.train.optim import build_optimizer, build_scheduler, parameter_groups, trainable_parameters

AUTOCAST_NAMES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}


class DeepSpeedEngine(Engine):
    """``deepspeed.initialize`` over the composed model; ``train.deepspeed_config`` entries override ours."""

    name = "deepspeed"

    def prepare(self, total_steps: int) -> None:
        if self.train_spec.nan_policy == "skip_batch" and self.train_spec.grad_accum > 1:
            raise ValueError(
                "train.nan_policy skip_batch with grad_accum > 1 is not supported by engine deepspeed: "
                "ZeRO cannot drop the gradients already reduced for the step; use nan_policy error or grad_accum 1"
            )
        _frozen_scalars_to_buffers(self.model)
        deepspeed = _import_deepspeed(self.device)
        deepspeed.init_distributed(dist_backend="nccl" if self.device.type == "cuda" else "gloo")
        self.model.to(self.device)
        optimizer = build_optimizer(
            parameter_groups(self.model, self.train_spec.weight_decay), self.train_spec, self.device
        )
        engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=self.model,
            optimizer=optimizer,
            lr_scheduler=lambda opt: build_scheduler(opt, self.train_spec, total_steps),
            config=self.config(),
            dist_init_required=False,
        )
        self.module = engine
        self.stage = engine.zero_optimization_stage()
        self.sharded = self.stage == 3

    def config(self) -> dict[str, Any]:
        """The DeepSpeed config for this spec, with ``train.deepspeed_config`` merged over it."""
        train = self.train_spec
        config: dict[str, Any] = {
            "train_micro_batch_size_per_gpu": self.spec.data.batch_size or 1,
            "gradient_accumulation_steps": train.grad_accum,
            "gradient_clipping": train.grad_clip or 0.0,
            "zero_optimization": {"stage": train.deepspeed_stage},
            "torch_autocast": {"enabled": self.dtype is not None, "dtype": AUTOCAST_NAMES.get(self.dtype, "bfloat16")},
            "steps_per_print": 2**62,
            "wall_clock_breakdown": False,
        }
        return _merge(config, train.deepspeed_config)

    def forward(self, batch, text):
        return self.module(batch.features, batch.feature_lengths, text)  # DeepSpeed applies the autocast

    def micro_step(self, sync: bool) -> contextlib.AbstractContextManager:
        self.module.set_gradient_accumulation_boundary(sync)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        self.module.backward(loss, scale_wrt_gas=False)  # the loss is already normalised for the step

    def step(self) -> StepResult:
        self.module.step()
        norm = self.module.get_global_grad_norm()
        return StepResult(self.module.was_step_applied(), None if norm is None else float(norm))

    def discard_gradients(self) -> None:
        self.module.zero_grad()

    @contextlib.contextmanager
    def _gathered(self, params: list[torch.nn.Parameter], modifier_rank: int | None = None):
        if self.stage == 3:
            import deepspeed

            with deepspeed.zero.GatheredParameters(params, modifier_rank=modifier_rank):
                yield
        else:
            yield

    def trainable_state(self) -> dict[str, torch.Tensor]:
        params = trainable_parameters(self.model)
        with self._gathered(list(params.values())):
            return {name: p.detach().cpu().clone() for name, p in params.items()}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        params = trainable_parameters(self.model)
        with self._gathered(list(params.values()), modifier_rank=0), torch.no_grad():
            for name, value in state.items():
                params[name].data.copy_(value.to(params[name].device, params[name].dtype))

    def save_optimizer(self, directory: Path) -> None:
        torch.save(self.optimizer.state_dict(), directory / zero_file(self.context.rank))

    def load_optimizer(self, directory: Path) -> None:
        files = zero_files(directory)
        if len(files) != self.context.world_size:
            raise CheckpointError(
                f"{directory}: {len(files)} ZeRO optimizer partitions for {self.context.world_size} ranks; "
                "resume a deepspeed checkpoint with the number of ranks that wrote it"
            )
        states = [load_torch(path, "ZeRO optimizer partition", _zero_safe_globals()) for path in files]
        self.optimizer.load_state_dict(states, load_optimizer_states=True, load_from_fp32_weights=True)


def _frozen_scalars_to_buffers(model: torch.nn.Module) -> None:
    """DeepSpeed cannot broadcast or partition 0-dim parameters (it views each as bytes): frozen ones
    become buffers of the same name, which computes and saves the same; a trainable one is refused."""
    for name, param in list(model.named_parameters()):
        if param.ndim:
            continue
        if param.requires_grad:
            raise ValueError(f"engine deepspeed cannot train the 0-dim parameter {name}; give it shape (1,)")
        owner_name, _, attribute = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        delattr(owner, attribute)
        owner.register_buffer(attribute, param.detach())


def _import_deepspeed(device: torch.device):
    """Import DeepSpeed, on its CPU accelerator when there is no GPU."""
    if device.type == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    try:
        import deepspeed
    except ImportError as exc:
        raise ImportError(f"train.engine deepspeed needs DeepSpeed: pip install deepspeed ({exc})") from exc
    return deepspeed


def _zero_safe_globals() -> list[Any]:
    """The DeepSpeed classes a ZeRO optimizer ``state_dict`` pickles besides tensors and plain values."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` merged into a copy of ``base``, recursively for nested mappings."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged
