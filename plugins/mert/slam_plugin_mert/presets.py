"""The released MERT-v1 configurations, as ``config.json`` field dicts (imports no torch).

Values follow the released ``m-a-p/MERT-v1-95M/config.json`` and, for 330M, the MERT repository's
``scripts/hf_config/mert_large.json`` and ``MERT_RVQ-VAE_CQT_330M.yaml`` (pre-LN transformer, group-norm
conv front end, ``attention_relax`` 32). Only fields that shape the forward pass are listed; a random-init
encoder is built from one of these plus its ``shape``, through the same code path as a checkpoint.
"""

from __future__ import annotations

from typing import Any

_CONV_STACK: dict[str, Any] = {
    "conv_dim": [512] * 7,
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
}

_COMMON: dict[str, Any] = {
    **_CONV_STACK,
    "model_type": "mert_model",
    "sample_rate": 24000,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "feat_proj_layer_norm": True,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "conv_pos_batch_norm": False,
    "feature_extractor_cqt": False,
    "deepnorm": False,
}

PRESETS: dict[str, dict[str, Any]] = {
    "95m": {
        **_COMMON,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "do_stable_layer_norm": False,
        "attention_relax": -1.0,
        "hidden_dropout": 0.1,
        "attention_dropout": 0.1,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.1,
    },
    "330m": {
        **_COMMON,
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "do_stable_layer_norm": True,
        "attention_relax": 32.0,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0,
    },
}


def preset_fields(size: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` fields of preset ``size`` with ``overrides`` applied."""
    return {**PRESETS[size], **(overrides or {})}
