"""Tiny random transformers checkpoints of the four families, written as transformers writes them.

``tests/`` is put on sys.path by conftest.py, so test modules import this as ``hf_testing``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: A narrow 3-layer conv stack (kernels 10, 3, 3; strides 5, 2, 2: 20 samples per frame, 800 Hz at 16 kHz;
#: receptive field 40 samples) under a 2-layer, 16-wide transformer.
TINY: dict[str, Any] = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": [8, 8, 8],
    "conv_kernel": [10, 3, 3],
    "conv_stride": [5, 2, 2],
    "num_conv_pos_embedding_groups": 2,
}
#: The family-specific fields of a tiny shape (data2vec-audio: 3 positional conv layers of kernel 5).
EXTRA: dict[str, dict[str, Any]] = {
    "wav2vec2": {"num_conv_pos_embeddings": 16},
    "hubert": {"num_conv_pos_embeddings": 16},
    "wavlm": {"num_conv_pos_embeddings": 16, "num_buckets": 8, "max_bucket_distance": 20},
    "data2vec-audio": {"num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5},
}
#: The shape of the toy LLM the tests put behind the encoders.
TINY_LLM = {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64}
#: A pre-LN transformer over a layer-norm conv stack (the large releases' layout).
STABLE = {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}
MODEL_CLASSES = {
    "wav2vec2": "Wav2Vec2Model",
    "hubert": "HubertModel",
    "wavlm": "WavLMModel",
    "data2vec-audio": "Data2VecAudioModel",
}
FAMILIES = tuple(MODEL_CLASSES)


def tiny_fields(family: str, **fields: Any) -> dict[str, Any]:
    """The transformers config fields of a tiny model of ``family`` (``fields`` under transformers' names)."""
    return {**TINY, **EXTRA[family], **fields}


def tiny_shape(family: str, **fields: Any) -> dict[str, Any]:
    """The ``shape`` of a tiny random-init encoder of ``family``: :func:`tiny_fields` under the shape's names."""
    from slam_plugin_hf_audio.plugin import SHAPES

    return SHAPES[family].from_upstream(tiny_fields(family, **fields)).given()


def tiny_model(family: str, seed: int = 0, **fields: Any):
    """A tiny random transformers model of ``family`` (eval mode)."""
    import torch
    import transformers

    model_class = getattr(transformers, MODEL_CLASSES[family])
    torch.manual_seed(seed)
    return model_class(model_class.config_class(**tiny_fields(family, **fields))).eval()


def save_tiny(folder: Path, family: str, *, seed: int = 0, do_normalize: bool = False, **fields: Any):
    """Write a tiny random checkpoint folder of ``family`` (config.json, model.safetensors,
    preprocessor_config.json); returns the model."""
    model = tiny_model(family, seed, **fields)
    model.save_pretrained(folder)
    preprocessor = {"feature_size": 1, "sampling_rate": 16000, "do_normalize": do_normalize, "padding_value": 0.0}
    (Path(folder) / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    return model
