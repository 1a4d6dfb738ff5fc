"""Building the transformers model of an :class:`~slam_core.hf_audio.HFAudioEncoderConfig`: from a checkpoint
folder (transformers' own loading code, no remote code) or with random weights from a preset and ``shape``.

Pretraining-only parts are switched off (SpecAugment masking, LayerDrop), so a model's forward is a
function of its input. Heads a folder may hold (a CTC ``lm_head``, a pretraining quantizer) are ignored;
weights of the model itself that are missing or of the wrong shape are refused, naming the keys.
"""

from __future__ import annotations

import contextlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError, SpecError

#: Settings that make the forward deterministic: no SpecAugment, no LayerDrop.
INFERENCE_SETTINGS = {"apply_spec_augment": False, "mask_time_prob": 0.0, "mask_feature_prob": 0.0, "layerdrop": 0.0}
DEFAULT_SAMPLE_RATE = 16000
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class AudioModel:
    """A built model and what its folder's ``preprocessor_config.json`` says about the input."""

    model: Any
    sample_rate: int
    do_normalize: bool


def build_audio_model(config: Any, model_class: type, dtype: torch.dtype) -> AudioModel:
    """The model ``config`` describes (``config.path`` or random init), in ``dtype``."""
    if config.path is None:
        return AudioModel(
            _without_pretraining_parts(_random_model(config, model_class).to(dtype)), DEFAULT_SAMPLE_RATE, False
        )
    folder = Path(config.path).expanduser()
    preprocessor = read_json(folder / "preprocessor_config.json", required=False)
    model = _load_model(folder, model_class, dtype, config_type=_type_of(config))
    rate = int(preprocessor.get("sampling_rate", DEFAULT_SAMPLE_RATE))
    return AudioModel(_without_pretraining_parts(model), rate, bool(preprocessor.get("do_normalize", False)))


def _without_pretraining_parts(model: Any) -> Any:
    """Drop ``masked_spec_embed`` (SpecAugment's mask vector, which some classes always create): the encoder
    never masks, so it would be a parameter without a gradient."""
    if isinstance(getattr(model, "masked_spec_embed", None), torch.nn.Parameter):
        del model.masked_spec_embed
    return model


def _type_of(config: Any) -> str:
    return str(getattr(config, "type", type(config).__name__))


def _random_model(config: Any, model_class: type) -> Any:
    config_class = model_class.config_class
    fields = config.random_init_fields()
    defaults = config_class()
    unknown = sorted(key for key in fields if not hasattr(defaults, key))
    if unknown:
        raise SpecError(
            [f"{_type_of(config)}: {config_class.__name__} has no field(s) {unknown}; drop them from shape"]
        )
    try:
        hf_config = config_class(**fields, **INFERENCE_SETTINGS)
    except (TypeError, ValueError) as exc:
        raise SpecError([f"{_type_of(config)}: invalid random-init shape {fields}: {exc}"]) from exc
    _refuse_unsupported(hf_config, _type_of(config))
    return model_class(hf_config)


def _load_model(folder: Path, model_class: type, dtype: torch.dtype, config_type: str) -> Any:
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: no such checkpoint folder; set the encoder's path to a transformers folder with "
            "config.json and the weights (e.g. a download of facebook/wav2vec2-base)"
        )
    fields = read_json(folder / "config.json", required=True)
    expected = model_class.config_class.model_type
    if fields.get("model_type") != expected:
        raise CheckpointError(
            f"{folder / 'config.json'}: model_type {fields.get('model_type')!r} is not {expected!r}, which "
            f"encoder type {config_type!r} reads; pick the encoder type of that model"
        )
    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise CheckpointError(f"{folder}: no weights found; expected one of {list(WEIGHT_FILES)}")
    hf_config = model_class.config_class.from_dict({**fields, **INFERENCE_SETTINGS})
    _refuse_unsupported(hf_config, str(folder / "config.json"))
    if torch.get_default_device().type == "meta":  # slam inspect: the architecture only, no weights read
        return model_class(hf_config).to(dtype)
    with quiet_transformers():
        try:
            model, info = model_class.from_pretrained(
                folder, config=hf_config, dtype=dtype, output_loading_info=True, weights_only=True
            )
        except pickle.UnpicklingError:
            raise CheckpointError(
                f"{folder / present[0]}: the pickle holds more than tensors, which torch.load(weights_only=True) "
                "refuses; convert a trusted copy to safetensors"
            ) from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{folder / present[0]}: cannot load the weights: {exc}") from exc
    problems = _loading_problems(info)
    if problems:
        raise CheckpointError(f"{folder / present[0]} does not hold the model config.json describes: {problems}")
    return model


def _refuse_unsupported(hf_config: Any, origin: str) -> None:
    if getattr(hf_config, "add_adapter", False):
        raise CheckpointError(f"{origin}: add_adapter is true; adapter layers (which change the lengths) are not run")


def _loading_problems(info: dict[str, Any]) -> str:
    parts = []
    mismatched = [f"{key} {list(found)} (expected {list(wanted)})" for key, found, wanted in info["mismatched_keys"]]
    for label, keys in (("missing keys", sorted(info["missing_keys"])), ("wrong shapes", sorted(mismatched))):
        if keys:
            shown = ", ".join(keys[:5]) + (f" … ({len(keys)} in all)" if len(keys) > 5 else "")
            parts.append(f"{label}: {shown}")
    return "; ".join(parts)


def read_json(path: Path, required: bool, folder: str = "a transformers checkpoint folder") -> dict[str, Any]:
    """The JSON object in ``path`` (``{}`` when absent and not ``required``); a CheckpointError names the file."""
    if not path.is_file():
        if required:
            raise CheckpointError(f"{path} not found: {folder} needs its config.json")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' load report and progress bar: problems are checked and raised here instead."""
    from transformers.utils import logging

    level, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bar:
            logging.enable_progress_bar()
