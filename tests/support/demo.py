"""Overrides that shrink the embedded demo's spec (recipes/demo/spec.yaml) to a run of seconds."""

from __future__ import annotations

#: A 1-layer, 64-wide whisper encoder instead of the demo's 256 x 4.
TINY_ENCODER = ["encoder.shape={hidden_size: 64, num_layers: 1, num_heads: 2, intermediate_size: 128}"]
#: A toy LLM instead of SmolLM2, 2 training steps, 4 new tokens when decoding.
TOY_LLM = [
    "llm={type: toy-llm, shape: {hidden_size: 64, num_layers: 2, num_heads: 4, intermediate_size: 128}}",
    "projector.hidden_dim=64",
    "train.max_steps=2",
    "train.log_every_steps=1",
    "infer.max_new_tokens=4",
]
