"""Loading a trained model: a run folder, one of its checkpoint folders, or an export folder (``slam export``).

:func:`load_trained` is the one way ``slam infer``, ``slam serve``, ``slam export`` and Python
code load one: the spec (the run's ``spec.json``, or the export's), the model built from it and
the trained weights copied in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import torch

from slam_core.errors import CheckpointError
from slam_core.model import SlamModel
from slam_core.runtime.checkpoints import layout
from slam_core.runtime.export import folder as export_folder
from slam_core.spec import PipelineSpec


def spec_of(path: str | Path, overrides: Sequence[str] = ()) -> PipelineSpec:
    """The spec of an export folder, or of the run a run or checkpoint folder belongs to, with ``overrides``."""
    path = Path(path)
    if export_folder.is_export(path):
        return export_folder.load_export_spec(path, overrides)
    return layout.load_spec_of_run(path, overrides)


def build_as_trained(spec: PipelineSpec, registry=None) -> SlamModel:
    """``build_model(spec)`` from the RNG state training built it from (``train.seed``), so that weights a
    checkpoint does not hold (a randomly initialised frozen component) are the run's own; the caller's RNG
    state is left as it was."""
    from slam_core.model import build_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        return build_model(spec, registry)


def has_weights(path: str | Path) -> bool:
    """Whether ``path`` is an export, a checkpoint folder, or a run folder with a checkpoint."""
    path = Path(path)
    return (
        export_folder.is_export(path)
        or (path / layout.TRAINABLE_FILE).is_file()
        or bool(layout.checkpoints(path / layout.CHECKPOINTS_DIR))
    )


def load_trained(
    path: str | Path,
    *,
    spec: PipelineSpec | None = None,
    overrides: Sequence[str] = (),
    require_checkpoint: bool = False,
) -> tuple[PipelineSpec, SlamModel, Path | None]:
    """``(spec, model, weights)`` of a run, checkpoint or export folder (``spec``: instead of its own).

    ``weights`` is the checkpoint folder or export weights file used; ``None`` for a run with no
    checkpoint yet (the spec's own weights), refused with ``require_checkpoint``.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run, checkpoint or export folder")
    spec = spec if spec is not None else spec_of(path, overrides)
    model = build_as_trained(spec)
    if not has_weights(path):
        if require_checkpoint:
            layout.resolve(path)  # the error that names what is missing
        return spec, model, None
    return spec, model, load_trained_weights(model, path)


def load_trained_weights(model: SlamModel, checkpoint: str | Path) -> Path:
    """Copy the trained tensors of ``checkpoint`` into ``model``; returns the checkpoint folder (or export
    weights file) used.

    ``checkpoint`` is an export folder (its weights over the model built from its spec), a
    checkpoint folder or a run folder (see :func:`~slam_core.runtime.checkpoints.layout.resolve`).
    A checkpoint must hold exactly the model's trainable tensors (by name and shape; frozen ones
    come from the spec's own weights and are expected absent), all finite.
    """
    if export_folder.is_export(checkpoint):
        return export_folder.load_export_weights(model, checkpoint)
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


def ready_for_decoding(model: SlamModel, device: str | torch.device) -> SlamModel:
    """``model`` on ``device`` in eval mode, for a process that only decodes: its PEFT adapter is folded into
    the LLM's weights where the method can (see :meth:`SlamModel.merge_adapter`)."""
    with contextlib.suppress(NotImplementedError):  # the adapter stays apart: the same tokens, a little slower
        model.merge_adapter()
    return model.to(device).eval()
