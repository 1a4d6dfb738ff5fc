"""Read the encoder weights of a Whisper checkpoint: a Hugging Face directory or an OpenAI ``.pt`` file.

Both come back as a ``WhisperConfig`` and a state dict in the names of transformers'
``WhisperEncoder`` (``conv1.weight``, ``layers.0.self_attn.q_proj.weight``, …). Only encoder
tensors are read; the decoder stays on disk (safetensors) or is dropped (``.bin``/``.pt``).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch

from slam_core.errors import CheckpointError

#: Where the encoder's tensors live: WhisperForConditionalGeneration, WhisperModel, a bare WhisperEncoder.
HF_ENCODER_PREFIXES = ("model.encoder.", "encoder.", "")
OPENAI_DIMS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")
#: OpenAI ``AudioEncoder`` names → transformers ``WhisperEncoder`` names (substring replacements, in order).
OPENAI_TO_HF = (
    ("positional_embedding", "embed_positions.weight"),
    ("blocks.", "layers."),
    (".attn.query.", ".self_attn.q_proj."),
    (".attn.key.", ".self_attn.k_proj."),
    (".attn.value.", ".self_attn.v_proj."),
    (".attn.out.", ".self_attn.out_proj."),
    (".attn_ln.", ".self_attn_layer_norm."),
    (".mlp.0.", ".fc1."),
    (".mlp.2.", ".fc2."),
    (".mlp_ln.", ".final_layer_norm."),
    ("ln_post.", "layer_norm."),
)
_HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class EncoderCheckpoint(NamedTuple):
    """The encoder's config, its tensors (transformers names) and where they came from."""

    config: Any  # transformers.WhisperConfig
    state_dict: dict[str, torch.Tensor]
    source: Path


def read_checkpoint(path: str | Path) -> EncoderCheckpoint:
    """Read the encoder of a Hugging Face Whisper directory or an OpenAI-format ``.pt`` file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(
            f"whisper: checkpoint {path} does not exist; set path to a Hugging Face Whisper directory, "
            "an OpenAI .pt file, or null for random init"
        )
    if path.is_dir():
        return read_hf_directory(path)
    if path.suffix in (".pt", ".pth"):
        return read_openai_checkpoint(path)
    raise CheckpointError(
        f"whisper: cannot read {path}: expected a Hugging Face model directory (config.json + weights) "
        "or an OpenAI-format .pt file"
    )


def read_hf_directory(directory: Path) -> EncoderCheckpoint:
    """Encoder of a ``WhisperForConditionalGeneration``/``WhisperModel``/``WhisperEncoder`` directory."""
    from transformers import WhisperConfig

    config_file = directory / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"whisper: {directory} has no config.json; it is not a Hugging Face model directory")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != "whisper":
        raise CheckpointError(
            f"whisper: {config_file} has model_type {model_type!r}, not 'whisper'; "
            "point path at a Whisper checkpoint (WhisperModel or WhisperForConditionalGeneration)"
        )
    lazy = {}
    for file in _weight_files(directory):
        lazy.update(_lazy_tensors(file))
    prefix = next((p for p in HF_ENCODER_PREFIXES if f"{p}conv1.weight" in lazy), None)
    if prefix is None:
        raise CheckpointError(
            f"whisper: the weights in {directory} hold no Whisper encoder (no model.encoder.conv1.weight, "
            f"encoder.conv1.weight or conv1.weight); found e.g. {sorted(lazy)[:5]}"
        )
    state = {name[len(prefix) :]: load() for name, load in lazy.items() if name.startswith(prefix)}
    return EncoderCheckpoint(WhisperConfig.from_json_file(config_file), state, directory)


def read_openai_checkpoint(file: Path) -> EncoderCheckpoint:
    """Encoder of an OpenAI ``whisper`` checkpoint: ``{"dims": {...}, "model_state_dict": {...}}``."""
    from transformers import WhisperConfig

    checkpoint = _torch_load(file)
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= checkpoint.keys():
        found = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(
            f"whisper: {file} is not an OpenAI Whisper checkpoint: expected a dict with 'dims' and "
            f"'model_state_dict', found {found}"
        )
    dims = checkpoint["dims"]
    missing = [name for name in OPENAI_DIMS if not isinstance(dims, dict) or name not in dims]
    if missing:
        raise CheckpointError(f"whisper: {file}: 'dims' lacks {missing}; it must be a dict of ModelDimensions")
    state = {
        openai_to_hf_name(name.removeprefix("encoder.")): tensor
        for name, tensor in checkpoint["model_state_dict"].items()
        if name.startswith("encoder.")
    }
    config = WhisperConfig(
        num_mel_bins=dims["n_mels"],
        max_source_positions=dims["n_audio_ctx"],
        d_model=dims["n_audio_state"],
        encoder_attention_heads=dims["n_audio_head"],
        encoder_layers=dims["n_audio_layer"],
        encoder_ffn_dim=4 * dims["n_audio_state"],
    )
    return EncoderCheckpoint(config, state, file)


def openai_to_hf_name(name: str) -> str:
    """``blocks.0.attn.query.weight`` → ``layers.0.self_attn.q_proj.weight`` (encoder-relative names)."""
    for old, new in OPENAI_TO_HF:
        name = name.replace(old, new)
    return name


def _weight_files(directory: Path) -> list[Path]:
    for name in _HF_WEIGHTS:
        index = directory / f"{name}.index.json"
        if index.is_file():
            return sorted({directory / shard for shard in json.loads(index.read_text())["weight_map"].values()})
        if (directory / name).is_file():
            return [directory / name]
    raise CheckpointError(f"whisper: {directory} has no model.safetensors or pytorch_model.bin (sharded or not)")


def _lazy_tensors(file: Path) -> Iterator[tuple[str, Callable[[], torch.Tensor]]]:
    """``(name, load)`` pairs; safetensors tensors are read only when ``load()`` is called."""
    if file.suffix == ".safetensors":
        from safetensors import safe_open

        handle = safe_open(str(file), framework="pt")
        for name in handle.keys():  # noqa: SIM118 (a safetensors handle is not a dict)
            yield name, lambda name=name: handle.get_tensor(name)
        return
    state = _torch_load(file)
    if not isinstance(state, dict):
        raise CheckpointError(f"whisper: {file} holds a {type(state).__name__}, not a state dict")
    for name, tensor in state.items():
        yield name, lambda tensor=tensor: tensor


def _torch_load(file: Path) -> Any:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"whisper: {file} cannot be loaded with weights_only=True ({error}); "
            "re-save it holding only tensors, dicts, lists and numbers"
        ) from error
    except Exception as error:  # a truncated or foreign file: zip and unpickling errors have many types
        raise CheckpointError(
            f"whisper: {file} cannot be read as a torch checkpoint ({type(error).__name__}: {error}); "
            "is the file complete?"
        ) from error
