"""Loading a training checkpoint's trainable weights into a freshly built SlamModel."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from slam_core.errors import CheckpointError
from slam_core.model import SlamModel

TRAINABLE_FILE = "trainable.safetensors"


class WeightsError(CheckpointError):
    """A checkpoint that does not fit the model built from the spec; the message names the file."""


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself when it is a checkpoint folder, else the best (or latest) one of a run folder."""
    path = Path(path)
    if (path / TRAINABLE_FILE).is_file():
        return path
    checkpoints = path / "checkpoints"
    if not checkpoints.is_dir():
        raise WeightsError(f"{path}: neither a checkpoint folder ({TRAINABLE_FILE}) nor a run folder (checkpoints/)")
    best = checkpoints / "best.json"
    if best.is_file():
        name = json.loads(best.read_text()).get("checkpoint")
        if name and (checkpoints / name / TRAINABLE_FILE).is_file():
            return checkpoints / name
    found = sorted(p for p in checkpoints.glob("step-*") if (p / TRAINABLE_FILE).is_file())
    if not found:
        raise WeightsError(f"{checkpoints}: no complete checkpoint")
    return found[-1]


def load_trained_weights(model: SlamModel, checkpoint: str | Path) -> Path:
    """Copy the checkpoint's trainable tensors into ``model``; every name and shape must match.

    Returns the checkpoint folder used (see :func:`resolve_checkpoint`).
    """
    from safetensors.torch import load_file

    folder = resolve_checkpoint(checkpoint)
    file = folder / TRAINABLE_FILE
    try:
        saved = load_file(file, device="cpu")
    except Exception as exc:
        raise WeightsError(f"{file}: cannot read the trainable weights: {type(exc).__name__}: {exc}") from exc
    own = model.state_dict()
    unknown = sorted(set(saved) - set(own))
    if unknown:
        raise WeightsError(
            f"{file}: {len(unknown)} tensors the model built from this spec does not have, e.g. {unknown[:3]}; "
            "decode with the spec the checkpoint was trained with"
        )
    mismatched = [name for name, tensor in saved.items() if tuple(tensor.shape) != tuple(own[name].shape)]
    if mismatched:
        name = mismatched[0]
        raise WeightsError(
            f"{file}: {len(mismatched)} tensors differ in shape from the model, e.g. {name} "
            f"{tuple(saved[name].shape)} vs {tuple(own[name].shape)}"
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            own[name].copy_(tensor)
    return folder
