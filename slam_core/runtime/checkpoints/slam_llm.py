"""Checkpoints of SLAM-LLM (the predecessor project) turned into SLAM checkpoint folders.

SLAM-LLM's speech recipes save, with ``save_model_checkpoint_peft``, one ``model.pt``: a state
dict of the trainable parameters of its ``slam_model`` (``encoder_projector.*`` and, with PEFT,
``llm.base_model.model.…lora_A.default.weight`` …; ``encoder.*`` when the encoder was trained).
Our :class:`~slam_core.model.SlamModel` holds the same modules as ``projector`` and ``llm.model``
(the wrapped causal LM), so the names map by prefix; the projector's own names are the ones the
linear-projector plugin shares with SLAM-LLM. The converted folder holds exactly the trainable
tensors of the model the spec builds, and ``slam infer --checkpoint`` loads it like one of ours.
"""

from __future__ import annotations

from pathlib import Path

import torch

from slam_core.errors import CheckpointError
from slam_core.runtime.checkpoints import io, layout

#: SLAM-LLM module prefix -> SlamModel module prefix.
PREFIXES = {"encoder_projector.": "projector.", "llm.": "llm.model."}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a SLAM-LLM ``model.pt`` (read with ``weights_only=True``)."""
    state = io.load_torch(path, "SLAM-LLM checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: not a SLAM-LLM model.pt (expected a state dict of tensors, as save_model_checkpoint_peft "
            f"writes; got {type(state).__name__})"
        )
    return state


def rename(state: dict[str, torch.Tensor], source: Path) -> dict[str, torch.Tensor]:
    """``state`` under SlamModel's names; a name of a module we do not map is refused, naming it."""
    renamed, unknown = {}, []
    for name, tensor in state.items():
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None:
            unknown.append(name)
            continue
        renamed[PREFIXES[prefix] + name[len(prefix) :]] = tensor
    if unknown:
        trained_encoder = any(name.startswith("encoder.") for name in unknown)
        hint = (
            "it trained the encoder too (freeze_encoder=false), which this conversion does not map; "
            "convert a checkpoint trained with a frozen encoder"
            if trained_encoder
            else "only encoder_projector.* and llm.* are mapped"
        )
        raise CheckpointError(f"{source}: {len(unknown)} tensors of no known module, e.g. {unknown[:3]}; {hint}")
    return renamed


def convert(source: Path, trainable: dict[str, tuple[int, ...]], output: Path) -> Path:
    """Write the SLAM checkpoint folder ``output`` from SLAM-LLM's ``source`` model.pt.

    ``trainable`` maps the trainable parameter names of the model built from the target spec to
    their shapes; the converted tensors must be exactly those (same names, same shapes), finite.
    The folder is written under a temporary name and renamed into place (none is left on a failure).
    """
    source, output = Path(source), Path(output)
    if output.exists():
        raise CheckpointError(f"{output}: already exists; name a new folder for the converted checkpoint")
    tensors = rename(read_state_dict(source), source)
    try:
        layout.check_tensors(source, tensors, trainable, complete=True)
    except CheckpointError as exc:
        raise CheckpointError(
            f"{exc}. The spec must match the SLAM-LLM run: encoder_dim and llm_dim, "
            "encoder_projector_ds_rate -> projector.k, peft_config r and target_modules -> peft.r and "
            "peft.target_modules (docs/from-slam-llm.md)"
        ) from None
    layout.check_finite(source, tensors)
    from safetensors.torch import save_file

    contiguous = {name: tensor.detach().to("cpu").contiguous() for name, tensor in tensors.items()}
    return io.write_dir_atomically(
        output,
        lambda staging: save_file(contiguous, staging / layout.TRAINABLE_FILE, metadata={"converted_from": "slam-llm"}),
        "the converted checkpoint",
    )
