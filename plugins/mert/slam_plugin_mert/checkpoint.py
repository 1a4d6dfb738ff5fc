"""MERT checkpoints in the released hub layout, read into transformers' ``HubertModel`` (no remote code).

MERT-v1's ``MERTModel`` is ``HubertModel`` with a feature projection that can also take CQT features
(``feature_extractor_cqt``, off in every released v1 checkpoint) and, for post-LN ``deepnorm`` models, a
residual scaling (also off). With both off, its forward is HuBERT's, and its ``config.json`` fields and
weight names are HuBERT's, so the released files load into ``HubertModel`` through transformers' own
loading code. ``attention_relax`` (32 in 330M) only rescales attention logits before a max-subtracted
softmax, which leaves the softmax unchanged; upstream ignores it for pre-LN models such as 330M anyway.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError
from slam_core.hf_audio_loading import quiet_transformers, read_json

ACCEPTED_MODEL_TYPES = ("mert_model", "hubert")
DEFAULT_SAMPLE_RATE = {"mert_model": 24000, "hubert": 16000}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Keys a released file may hold that the encoder has no use for, both pretraining-only: the
#: masked-prediction embedding and the CQT front end of ``feature_extractor_cqt`` models.
PRETRAINING_ONLY_KEYS = re.compile(r"masked_spec_embed|feature_extractor_cqt\..+")
#: ``HubertConfig`` fields taken from a MERT ``config.json`` (same names, same meaning).
HUBERT_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout",
    "activation_dropout",
    "attention_dropout",
    "feat_proj_layer_norm",
    "feat_proj_dropout",
    "layer_norm_eps",
    "feat_extract_norm",
    "feat_extract_activation",
    "conv_dim",
    "conv_stride",
    "conv_kernel",
    "conv_bias",
    "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
    "conv_pos_batch_norm",
    "do_stable_layer_norm",
)
#: Fields naming MERT variants this encoder cannot run, with the reason.
UNSUPPORTED_FLAGS = {
    "feature_extractor_cqt": "it feeds CQT features into the feature projection at inference",
    "deepnorm": "it scales the residual connections of every layer",
}


@dataclass(frozen=True)
class MERTSource:
    """A MERT configuration (``config.json`` fields) and where it came from."""

    fields: dict[str, Any]
    origin: str
    directory: Path | None = None
    do_normalize: bool = False

    @property
    def sample_rate(self) -> int:
        return int(self.fields.get("sample_rate", DEFAULT_SAMPLE_RATE[self.fields.get("model_type", "mert_model")]))


def read_source(directory: str | Path) -> MERTSource:
    """Read and check ``config.json`` (and ``preprocessor_config.json`` if present) of a checkpoint folder."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise CheckpointError(
            f"MERT checkpoint folder {directory} does not exist; set encoder.path to a folder "
            "holding config.json and the weights (e.g. a download of m-a-p/MERT-v1-95M)"
        )
    fields = read_json(directory / "config.json", required=True, folder="a MERT checkpoint folder")
    model_type = fields.get("model_type")
    if model_type not in ACCEPTED_MODEL_TYPES:
        raise CheckpointError(
            f"{directory / 'config.json'}: model_type {model_type!r} is not a MERT checkpoint "
            f"(expected one of {list(ACCEPTED_MODEL_TYPES)}); point encoder.path at a MERT-v1 folder"
        )
    preprocessor = read_json(directory / "preprocessor_config.json", required=False)
    do_normalize = bool(preprocessor.get("do_normalize", False))
    return MERTSource(fields, str(directory / "config.json"), directory, do_normalize)


def hubert_config(source: MERTSource):
    """The ``HubertConfig`` equivalent to ``source``; SpecAugment and LayerDrop are left out."""
    from transformers import HubertConfig

    for flag, reason in UNSUPPORTED_FLAGS.items():
        if source.fields.get(flag):
            raise CheckpointError(
                f"{source.origin}: {flag} is true, which this encoder does not implement ({reason}); "
                "no released MERT-v1 checkpoint sets it"
            )
    mapped = {name: source.fields[name] for name in HUBERT_FIELDS if name in source.fields}
    try:
        return HubertConfig(
            **mapped, apply_spec_augment=False, mask_time_prob=0.0, mask_feature_prob=0.0, layerdrop=0.0
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source.origin}: invalid MERT configuration: {exc}") from exc


def build_model(source: MERTSource, dtype: torch.dtype):
    """A ``HubertModel`` with the checkpoint's weights, or random weights for a preset (``directory`` None)."""
    from transformers import HubertModel

    config = hubert_config(source)
    if source.directory is None:
        return HubertModel(config).to(dtype)
    return _load_weights(source.directory, config, dtype)


def _load_weights(directory: Path, config, dtype: torch.dtype):
    from transformers import HubertModel

    present = [name for name in WEIGHT_FILES if (directory / name).is_file()]
    if not present:
        raise CheckpointError(f"{directory}: no weights found; expected one of {list(WEIGHT_FILES)}")
    weights = directory / present[0]
    if torch.get_default_device().type == "meta":  # slam inspect: the architecture only, no weights read
        return HubertModel(config).to(dtype)
    with quiet_transformers():
        try:
            model, info = HubertModel.from_pretrained(
                directory,
                config=config,
                dtype=dtype,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported in `info` and refused below, naming the keys
                weights_only=True,
            )
        except pickle.UnpicklingError as exc:
            detail = next((line.strip() for line in str(exc).splitlines() if "Unsupported global" in line), "")
            raise CheckpointError(
                f"{weights}: cannot load the MERT weights: the pickle holds more than tensors, which "
                f"torch.load(weights_only=True) refuses ({detail or type(exc).__name__}); convert a trusted copy "
                "to safetensors"
            ) from None
        except (OSError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{weights}: cannot load the MERT weights: {exc}") from exc
    problems = _loading_problems(info)
    if problems:
        raise CheckpointError(f"{weights} does not hold the model its config.json describes: {'; '.join(problems)}")
    return model


def _loading_problems(info: dict[str, Any]) -> list[str]:
    """Lines naming missing, unexpected (other than pretraining-only) and wrongly shaped keys."""
    unexpected = sorted(k for k in info["unexpected_keys"] if not PRETRAINING_ONLY_KEYS.fullmatch(k))
    mismatched = sorted(
        f"{key} {list(found)} (expected {list(wanted)})" for key, found, wanted in info["mismatched_keys"]
    )
    problems = []
    for label, keys in (
        ("missing", sorted(info["missing_keys"])),
        ("unexpected", unexpected),
        ("wrong shape", mismatched),
    ):
        if keys:
            shown = ", ".join(keys[:5]) + (f" … ({len(keys)} in all)" if len(keys) > 5 else "")
            problems.append(f"{label} keys: {shown}")
    return problems
