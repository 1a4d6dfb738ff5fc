"""Random-init shapes of the four encoders (transformers config fields; imports no torch).

``base`` is the transformers config class's defaults, which are the base checkpoints' shape
(768 wide, 12 layers, a group-norm conv stack and a post-LN transformer). ``large`` is the
24-layer, 1024-wide shape of the large releases, with their layer-norm conv stack and pre-LN
transformer (data2vec-audio has neither option). A checkpoint folder's ``config.json`` always
defines the model it holds; these only shape a random-init encoder (tests, ``slam inspect``).
"""

from __future__ import annotations

from typing import Any

_LARGE = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096}
_LARGE_STABLE = {**_LARGE, "feat_extract_norm": "layer", "do_stable_layer_norm": True}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "wav2vec2": {"base": {}, "large": {**_LARGE_STABLE, "conv_bias": True}},
    "hubert": {"base": {}, "large": {**_LARGE_STABLE, "conv_bias": True}},
    "wavlm": {"base": {}, "large": _LARGE_STABLE},
    "data2vec-audio": {"base": {}, "large": _LARGE},
}
