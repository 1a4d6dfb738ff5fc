"""Loading a training checkpoint's trainable weights into a freshly built SlamModel."""

from __future__ import annotations

from pathlib import Path

import torch

from slam_core.model import SlamModel
from slam_core.runtime.checkpoints import layout


def load_trained_weights(model: SlamModel, checkpoint: str | Path) -> Path:
    """Copy the checkpoint's trainable tensors into ``model``; each must be a tensor of the model, of its shape.

    ``checkpoint`` is a checkpoint folder or a run folder (see :func:`~slam_core.runtime.checkpoints.layout.resolve`).
    Returns the checkpoint folder used.
    """
    folder = layout.resolve(Path(checkpoint))
    saved = layout.read_trainable(folder)
    own = model.state_dict()
    layout.check_tensors(
        folder / layout.TRAINABLE_FILE, saved, {name: tuple(t.shape) for name, t in own.items()}, complete=False
    )
    with torch.no_grad():
        for name, tensor in saved.items():
            own[name].copy_(tensor)
    return folder
