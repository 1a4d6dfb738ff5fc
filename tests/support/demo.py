"""Overrides that shrink the embedded demo's spec (recipes/demo/spec.yaml) to a run of seconds."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

#: The embedded demo's recipe folder in this clone.
DEMO_RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "demo"

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


@functools.cache
def recipe_script(name: str):
    """``recipes/demo/<name>.py`` as a module, loaded once per test session (its pool workers pickle its
    functions by module name, so every test module must share the one copy)."""
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMO_RECIPE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
