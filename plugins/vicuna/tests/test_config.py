"""vicuna: the config model (no torch needed) and what the plugin module imports."""

from __future__ import annotations

import subprocess
import sys

import pytest
from slam_plugin_vicuna.plugin import SMOLLM2, VicunaConfig

SHAPE = {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128}


def test_no_source_means_the_default_small_llm():
    config = VicunaConfig()
    assert (config.gguf, config.path, config.shape) == (SMOLLM2, None, None)
    assert (config.dtype, config.template, config.pad_token) == ("auto", "vicuna_v1_1", "eos")
    assert config.modality_position == "before_instruction"
    assert not config.gradient_checkpointing


def test_an_explicit_source_is_kept():
    assert VicunaConfig(path="/models/vicuna").gguf is None
    assert VicunaConfig(shape=SHAPE).shape.num_kv_heads is None


@pytest.mark.parametrize(
    "sources",
    [{"path": "/m", "gguf": "x.gguf"}, {"path": "/m", "shape": SHAPE}, {"gguf": SMOLLM2, "shape": SHAPE}],
)
def test_two_sources_are_refused(sources):
    with pytest.raises(ValueError, match="set only one of path, gguf and shape"):
        VicunaConfig(**sources)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({**SHAPE, "num_heads": 5}, "hidden_size 64 is not divisible by num_heads 5"),
        ({**SHAPE, "num_kv_heads": 3}, "num_heads 4 is not divisible by num_kv_heads 3"),
        ({**SHAPE, "layers": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_shapes_are_refused(shape, message):
    with pytest.raises(ValueError, match=message):
        VicunaConfig(shape=shape)


@pytest.mark.parametrize(
    "bad", [{"dtype": "float32"}, {"template": "vicuna"}, {"pad_token": "pad"}, {"modality_position": "middle"}]
)
def test_bad_choices_are_refused(bad):
    with pytest.raises(ValueError):
        VicunaConfig(**bad)


def test_plugin_module_imports_no_torch_or_transformers():
    code = (
        "import sys, slam_plugin_vicuna.plugin; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
