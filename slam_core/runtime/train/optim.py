"""AdamW over the trainable parameters (no weight decay on norms and biases) and the LR schedule."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from slam_core.spec import TrainSpec

#: Parameter-name patterns that get no weight decay (those of transformers' Trainer).
NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters that train, by name; frozen ones are left out (and out of the optimizer)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups of the trainable parameters: with ``weight_decay`` and without (norms, biases, scalars)."""
    from transformers.trainer_pt_utils import get_parameter_names

    decayed = set(get_parameter_names(model, list(NORM_LAYERS), NO_DECAY_PATTERNS))
    groups: dict[bool, list[nn.Parameter]] = {True: [], False: []}
    for name, param in trainable_parameters(model).items():
        groups[name in decayed and param.ndim >= 2].append(param)
    return [
        {"params": groups[True], "weight_decay": weight_decay},
        {"params": groups[False], "weight_decay": 0.0},
    ]


def build_optimizer(groups: Iterable[dict], train: TrainSpec, device: torch.device) -> torch.optim.AdamW:
    """AdamW at ``train.lr`` (fused kernels on CUDA)."""
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen (check train.freeze_* and the peft section)")
    return torch.optim.AdamW(groups, lr=train.lr, fused=device.type == "cuda")


def build_scheduler(optimizer: torch.optim.Optimizer, train: TrainSpec, total_steps: int):
    """Linear warmup over ``train.warmup_steps``, then linear or cosine decay to 0 at ``total_steps``."""
    from transformers import get_scheduler

    return get_scheduler(
        train.lr_schedule, optimizer, num_warmup_steps=train.warmup_steps, num_training_steps=total_steps
    )
