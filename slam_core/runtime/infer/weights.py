"""Loading a training checkpoint's trainable weights into a freshly built SlamModel."""

from __future__ import annotations

from pathlib import Path

import torch

from slam_core.errors import CheckpointError
from slam_core.model import SlamModel
from slam_core.runtime.checkpoints import layout


def load_trained_weights(model: SlamModel, checkpoint: str | Path) -> Path:
    """Copy the checkpoint's trainable tensors into ``model``; returns the checkpoint folder used.

    ``checkpoint`` is a checkpoint folder or a run folder (see :func:`~slam_core.runtime.checkpoints.layout.resolve`).
    The checkpoint must hold exactly the model's trainable tensors (by name and shape; frozen
    ones come from the spec's own weights and are expected absent), all finite.
    """
    folder = layout.resolve(Path(checkpoint))
    file = folder / layout.TRAINABLE_FILE
    saved = layout.read_trainable(folder)
    trainable = {name: tuple(p.shape) for name, p in model.named_parameters() if p.requires_grad}
    try:
        layout.check_tensors(file, saved, trainable, complete=True)
    except CheckpointError as exc:
        frozen = sum(1 for _, p in model.named_parameters() if not p.requires_grad)
        raise CheckpointError(
            f"{exc}; it must hold the {len(trainable)} trainable tensors of the model (its {frozen} frozen "
            "tensors come from the spec's weights and are expected absent)"
        ) from None
    layout.check_finite(file, saved)
    own = model.state_dict()
    with torch.no_grad():
        for name, tensor in saved.items():
            own[name].copy_(tensor)
    return folder
