"""AV-HuBERT checkpoints: the released fairseq files (pretrained or fine-tuned) and ``.safetensors`` state dicts.

Layouts (the encoder's keys are fairseq's ``AVHubertModel`` names in all of them):

- pretrained ``AVHubertModel``: ``model`` holds ``feature_extractor_{video,audio}.*``, ``layer_norm.*``,
  ``post_extract_proj.*``, ``encoder.*`` and the pretraining-only ``mask_emb``, ``label_embs_concat``,
  ``final_proj.*`` (``target_glu.*``), which are ignored;
- fine-tuned ``AVHubertSeq2Seq``: the encoder under ``encoder.w2v_model.``, next to ``decoder.*`` (ignored);
- fine-tuned ``AVHubertCtc``: the encoder under ``w2v_encoder.w2v_model.``, next to ``w2v_encoder.proj.*``.

The architecture comes from the file's ``cfg`` (``cfg.model``, or ``cfg.model.w2v_args.model`` for a
fine-tuned model; ``args`` in old files), with ``AVHubertConfig``'s defaults for missing fields; the
ResNet widths come from the tensors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from slam_core.errors import CheckpointError
from slam_plugin_av_hubert.plugin import ARCHITECTURE_FIELDS, AVHubertArchitecture
from slam_plugin_av_hubert.presets import UPSTREAM_DEFAULTS
from slam_plugin_av_hubert.safe_pickle import UnreadableCheckpoint, plain, read_pickled

log = logging.getLogger(__name__)

#: (prefix of the encoder's keys, name of the layout) for fine-tuned models.
FINE_TUNED_LAYOUTS = (
    ("encoder.w2v_model.", "fine-tuned AVHubertSeq2Seq"),
    ("w2v_encoder.w2v_model.", "fine-tuned AVHubertCtc"),
)
PRETRAINED_LAYOUT = "pretrained AVHubertModel"
PRETRAINING_ONLY = re.compile(r"mask_emb|label_embs_concat|(final_proj|target_glu)\..+")
#: torch's parametrized weight norm names the pieces differently from ``nn.utils.weight_norm``.
WEIGHT_NORM_NAMES = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}
TRUNK_CONV = "feature_extractor_video.resnet.trunk.layer{}.0.conv1.weight"


@dataclass(frozen=True)
class AVHubertCheckpoint:
    """A checkpoint, read: the encoder's state dict (fairseq names), its architecture fields and what was left out."""

    path: Path
    layout: str
    state: dict[str, torch.Tensor]
    model_cfg: dict[str, Any] | None
    resnet_widths: tuple[int, ...] | None
    ignored: dict[str, tuple[str, ...]] = field(default_factory=dict)
    stand_ins: tuple[str, ...] = ()


def _sample(keys: Iterable[str], limit: int = 8) -> str:
    ordered = sorted(keys)
    more = f" ... ({len(ordered)} in all)" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def model_config(blob: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``AVHubertConfig`` fields of a fairseq checkpoint (pretrained or fine-tuned), or None."""
    cfg, args = plain(blob.get("cfg")), plain(blob.get("args"))
    section = cfg.get("model") if isinstance(cfg, dict) else args
    if isinstance(section, dict) and "w2v_args" in section:
        inner = section["w2v_args"]
        section = inner.get("model", inner) if isinstance(inner, dict) else None
    return section if isinstance(section, dict) else None


def _split_layout(state: dict[str, torch.Tensor], path: Path) -> tuple[str, dict[str, torch.Tensor], dict]:
    for prefix, layout in FINE_TUNED_LAYOUTS:
        if any(key.startswith(prefix) for key in state):
            encoder = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
            rest = tuple(sorted(key for key in state if not key.startswith(prefix)))
            return layout, encoder, {"outside the encoder (decoder / output layer)": rest} if rest else {}
    if any(
        key.startswith(("feature_extractor_video.", "feature_extractor_audio.", "encoder.layers.")) for key in state
    ):
        return PRETRAINED_LAYOUT, dict(state), {}
    raise CheckpointError(
        f"{path}: no AV-HuBERT weights found: expected keys under feature_extractor_video. / encoder.layers. "
        "(pretrained AVHubertModel), encoder.w2v_model. (AVHubertSeq2Seq) or w2v_encoder.w2v_model. (AVHubertCtc); "
        f"found {_sample(state)}"
    )


def _rename_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for old, new in WEIGHT_NORM_NAMES.items():
            if key.endswith(old):
                key = key[: -len(old)] + new
        renamed[key] = value
    return renamed


def _resnet_widths(state: Mapping[str, torch.Tensor]) -> tuple[int, ...] | None:
    keys = [TRUNK_CONV.format(stage) for stage in range(1, 5)]
    return tuple(int(state[key].shape[0]) for key in keys) if all(key in state for key in keys) else None


def _read_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, tuple[str, ...]]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path), None, ()
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file: {exc}") from exc
    try:
        blob, stand_ins = read_pickled(path)
    except UnreadableCheckpoint as exc:
        raise CheckpointError(str(exc)) from exc
    if not (isinstance(blob, Mapping) and isinstance(blob.get("model"), Mapping)):
        found = f"a dict with keys {sorted(map(str, blob))[:8]}" if isinstance(blob, Mapping) else type(blob).__name__
        raise CheckpointError(
            f"{path}: not a fairseq checkpoint: expected a dict with a 'model' state dict, found {found}"
        )
    state = {str(k): v for k, v in blob["model"].items() if isinstance(v, torch.Tensor)}
    return state, model_config(blob), stand_ins


def read_checkpoint(path: str | Path) -> AVHubertCheckpoint:
    """Read ``path`` (fairseq ``.pt`` or ``.safetensors``) without running code from it; see the module doc."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"AV-HuBERT checkpoint {path} does not exist; set encoder.path to a released .pt file "
            "(e.g. large_vox_iter5.pt or self_large_vox_433h.pt) or a .safetensors state dict"
        )
    state, cfg, stand_ins = _read_state(path)
    layout, encoder, ignored = _split_layout(state, path)
    pretraining = tuple(sorted(key for key in encoder if PRETRAINING_ONLY.fullmatch(key)))
    if pretraining:
        ignored["pretraining-only"] = pretraining
    encoder = _rename_weight_norm({k: v for k, v in encoder.items() if k not in pretraining})
    return AVHubertCheckpoint(path, layout, encoder, cfg, _resnet_widths(encoder), ignored, stand_ins)


def shape_from_config(checkpoint: AVHubertCheckpoint) -> AVHubertArchitecture:
    """The architecture in the checkpoint's model config (``AVHubertConfig`` defaults for absent fields)."""
    cfg = checkpoint.model_cfg or {}
    if cfg.get("sub_encoder_layers"):
        raise CheckpointError(
            f"{checkpoint.path}: sub_encoder_layers = {cfg['sub_encoder_layers']} (per-modality transformers) "
            "is not supported; no released AV-HuBERT model uses it"
        )
    values = {**UPSTREAM_DEFAULTS, **{name: cfg[name] for name in ARCHITECTURE_FIELDS if name in cfg}}
    if checkpoint.resnet_widths is not None:
        values["resnet_widths"] = checkpoint.resnet_widths
    try:
        return AVHubertArchitecture.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})" for e in exc.errors()
        )
        raise CheckpointError(
            f"{checkpoint.path}: its model config is not an architecture this encoder builds: {problems}"
        ) from None


def load_into(module: nn.Module, checkpoint: AVHubertCheckpoint, unused: dict[str, tuple[str, ...]]) -> dict:
    """Load the checkpoint into ``module`` strictly, except keys under ``unused`` prefixes (reason -> prefixes).

    Returns every ignored key by reason; raises :class:`CheckpointError` naming missing, unexpected or
    wrongly shaped keys.
    """
    expected = module.state_dict()
    ignored = dict(checkpoint.ignored)
    given = dict(checkpoint.state)
    for reason, prefixes in unused.items():
        keys = tuple(sorted(k for k in given if k.startswith(prefixes) and k not in expected))
        if keys:
            ignored[reason] = keys
            for key in keys:
                del given[key]
    missing, unexpected = set(expected) - set(given), set(given) - set(expected)
    wrong = [
        f"{key} {list(given[key].shape)} (expected {list(expected[key].shape)})"
        for key in sorted(set(given) & set(expected))
        if given[key].shape != expected[key].shape
    ]
    problems = [f"missing keys: {_sample(missing)}"] if missing else []
    problems += [f"unexpected keys: {_sample(unexpected)}"] if unexpected else []
    problems += [f"wrong shapes: {_sample(wrong, 4)}"] if wrong else []
    if problems:
        raise CheckpointError(
            f"{checkpoint.path} ({checkpoint.layout}) does not match the encoder built from its config: "
            f"{'; '.join(problems)}"
        )
    on_meta = any(parameter.is_meta for parameter in module.parameters())
    if not on_meta:  # a model on the meta device (slam inspect) has the checkpoint checked, not copied
        module.load_state_dict(given, strict=True)
    summary = "; ".join(f"{reason}: {_sample(keys, 3)}" for reason, keys in ignored.items())
    log.info(
        "%s: loaded the %s encoder%s", checkpoint.path, checkpoint.layout, f"; ignored {summary}" if summary else ""
    )
    return ignored
