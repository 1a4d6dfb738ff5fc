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
    ("sources", "message"),
    [
        ({"path": "/m", "gguf": "x.gguf"}, r"vicuna: set only one of path and gguf \(got path /m and gguf x\.gguf\)"),
        (
            {"path": "/m", "shape": SHAPE},
            r"vicuna: path /m is a checkpoint, which defines its own shape; drop shape \(it describes a "
            r"random-init model\) or set path: null",
        ),
        (
            {"gguf": SMOLLM2, "size": "7b", "shape": SHAPE},
            r"vicuna: gguf smollm2 is a checkpoint, .*; drop size and shape \(they describe .*\) or set gguf: null",
        ),
    ],
)
def test_two_sources_are_refused(sources, message):
    with pytest.raises(ValueError, match=message):
        VicunaConfig(**sources)


def test_a_size_is_a_released_shape_and_shape_overrides_it():
    seven = VicunaConfig(size="7b").architecture()
    assert (seven.hidden_size, seven.num_layers, seven.num_heads, seven.intermediate_size) == (4096, 32, 32, 11008)
    assert (seven.vocab_size, seven.max_position_embeddings, seven.num_kv_heads) == (32000, 4096, None)
    assert VicunaConfig(shape={"num_layers": 2}).architecture() == seven.model_copy(update={"num_layers": 2})
    smol = VicunaConfig(size="smollm2-135m", shape={"vocab_size": 500}).architecture()
    assert (smol.hidden_size, smol.num_kv_heads, smol.vocab_size, smol.tie_word_embeddings) == (576, 3, 500, True)
    assert VicunaConfig(size="13b").gguf is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"hidden_size": 64}, r"vicuna: 'hidden_size' is now 'shape\.hidden_size' \(see docs/spec\.md\)"),
        ({"shape": {"num_hidden_layers": 2}}, r"vicuna: 'num_hidden_layers' is now 'shape\.num_layers'"),
        ({"num_key_value_heads": 2}, r"vicuna: 'num_key_value_heads' is now 'shape\.num_kv_heads'"),
    ],
)
def test_old_keys_name_their_new_key(config, message):
    with pytest.raises(ValueError, match=message):
        VicunaConfig(**config)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({**SHAPE, "num_heads": 5}, "hidden_size 64 is not divisible by num_heads 5"),
        ({**SHAPE, "num_kv_heads": 3}, "num_heads 4 is not divisible by num_kv_heads 3"),
        ({**SHAPE, "layers": 2}, "Extra inputs are not permitted"),
        ({"num_heads": 7}, "hidden_size 4096 is not divisible by num_heads 7"),
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
