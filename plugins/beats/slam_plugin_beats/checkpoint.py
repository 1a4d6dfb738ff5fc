"""Reading Microsoft's released BEATs checkpoints: ``{'cfg': {...}, 'model': state_dict}``.

The fine-tuned AudioSet checkpoints also hold a ``predictor`` (527-class linear head) and a
``label_dict``; the encoder does not use them and they are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from slam_core.errors import CheckpointError
from slam_plugin_beats.plugin import ARCHITECTURE_FIELDS, BeatsArchitecture

log = logging.getLogger(__name__)

#: Upstream ``BEATsConfig`` defaults, which apply to any field a checkpoint's ``cfg`` leaves out.
UPSTREAM_CFG_DEFAULTS: dict[str, Any] = {
    "input_patch_size": -1,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_wise_gradient_decay_ratio": 1.0,
    "layer_norm_first": False,
    "deep_norm": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
}

#: State-dict prefixes the encoder does not use (the fine-tuned models' classification head).
IGNORED_PREFIXES = ("predictor.",)


@dataclass(frozen=True)
class BeatsCheckpoint:
    """A released checkpoint, read: its architecture and the state dict the encoder loads."""

    path: Path
    shape: BeatsArchitecture
    state_dict: dict[str, torch.Tensor]
    ignored: tuple[str, ...] = field(default=())


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"a dict with keys {sorted(map(str, value))[:8]}"
    return f"a {type(value).__name__}"


def _shape_from_cfg(cfg: Mapping[str, Any], path: Path) -> BeatsArchitecture:
    values = {**UPSTREAM_CFG_DEFAULTS, **{k: v for k, v in cfg.items() if k in ARCHITECTURE_FIELDS}}
    try:
        return BeatsArchitecture.model_validate(values)
    except ValidationError as exc:
        raise CheckpointError(
            f"{path}: its 'cfg' does not describe a BEATs encoder this plugin can build: {exc}"
        ) from exc


def read_checkpoint(path: str | Path) -> BeatsCheckpoint:
    """Load and check a released BEATs ``.pt`` file (``torch.load(weights_only=True)``, on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"BEATs checkpoint {path} does not exist; download a released model (e.g. BEATs_iter3_plus_AS2M.pt "
            "from https://github.com/microsoft/unilm/tree/master/beats) or set path: null for a random-init encoder"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read with torch.load(weights_only=True): {exc}") from exc
    if not (
        isinstance(blob, Mapping) and isinstance(blob.get("cfg"), Mapping) and isinstance(blob.get("model"), Mapping)
    ):
        raise CheckpointError(
            f"{path}: not a BEATs checkpoint: expected a dict with a 'cfg' dict and a 'model' state dict "
            f"(the format Microsoft released), found {_describe(blob)}"
        )
    state = dict(blob["model"])
    ignored = tuple(sorted(k for k in state if k.startswith(IGNORED_PREFIXES)))
    for key in ignored:
        del state[key]
    return BeatsCheckpoint(path, _shape_from_cfg(blob["cfg"], path), state, ignored)


def _listing(keys: set[str], limit: int = 10) -> str:
    ordered = sorted(keys)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def load_checkpoint_into(module: nn.Module, checkpoint: BeatsCheckpoint) -> None:
    """``module.load_state_dict(strict=True)`` with an error naming the file and the mismatching keys."""
    expected, given = set(module.state_dict()), set(checkpoint.state_dict)
    missing, unexpected = expected - given, given - expected
    if missing or unexpected:
        problems = [f"missing keys: {_listing(missing)}"] if missing else []
        problems += [f"unexpected keys: {_listing(unexpected)}"] if unexpected else []
        raise CheckpointError(
            f"{checkpoint.path}: state dict does not match the BEATs architecture in its cfg "
            f"({'; '.join(problems)}); is it a checkpoint of another model?"
        )
    if any(t.is_meta for t in module.state_dict().values()):  # slam inspect: nothing to copy, shapes only
        own = module.state_dict()
        wrong = [k for k, t in checkpoint.state_dict.items() if tuple(t.shape) != tuple(own[k].shape)]
        if wrong:
            raise CheckpointError(f"{checkpoint.path}: tensor shapes do not match its cfg, e.g. {wrong[:3]}")
        return
    try:
        module.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{checkpoint.path}: tensor shapes do not match its cfg: {exc}") from exc
    if checkpoint.ignored:
        log.info("%s: ignored %s (the AudioSet classification head)", checkpoint.path, ", ".join(checkpoint.ignored))
