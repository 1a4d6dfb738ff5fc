"""lora: the conformance kit plus paper-scale counts and the peft adapter format."""

from __future__ import annotations

import json

import pytest
import torch
from slam_plugin_lora.method import LoRA
from slam_plugin_lora.plugin import LoRAConfig

from slam_core.errors import SpecError
from slam_core.testing import PEFTConformance


class TestLoRAConformance(PEFTConformance):
    component_name = "lora"
    config = {"r": 4, "alpha": 8, "dropout": 0.0}


def toy_llama(hidden=32, layers=2, heads=4, intermediate=48, vocab=320, device=None):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        vocab_size=vocab,
    )
    with torch.device(device or "cpu"):
        return LlamaForCausalLM(config)


def test_defaults_follow_slam_llm():
    config = LoRAConfig()
    assert (config.r, config.alpha, config.dropout) == (32, 32, 0.05)
    assert config.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_paper_scale_lora_on_a_vicuna_7b_shape_has_33_554_432_parameters():
    model = toy_llama(hidden=4096, layers=32, heads=32, intermediate=11008, vocab=32000, device="meta")
    adapted = LoRA(LoRAConfig()).apply(model.requires_grad_(False))
    trainable = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    # per layer: 4 projections, each A (r x 4096) + B (4096 x r)
    assert trainable == 32 * 4 * 32 * (4096 + 4096) == 33_554_432


def test_adapter_is_saved_in_peft_format(tmp_path):
    adapted = LoRA(LoRAConfig(r=4, alpha=16, dropout=0.0)).apply(toy_llama())
    LoRA(LoRAConfig(r=4, alpha=16, dropout=0.0)).save(adapted, tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert (config["r"], config["lora_alpha"]) == (4, 16)
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert (tmp_path / "adapter_model.safetensors").is_file()


def test_merge_folds_the_scaled_update_into_each_adapted_weight():
    torch.manual_seed(0)
    lora = LoRA(LoRAConfig(r=4, alpha=16, dropout=0.0))
    adapted = lora.apply(toy_llama()).eval()
    layer = adapted.base_model.model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(layer.lora_B["default"].weight)
    expected = layer.base_layer.weight + (16 / 4) * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    ids = torch.tensor([[1, 5, 9, 2]])
    with torch.no_grad():
        before = adapted(input_ids=ids).logits
        merged = lora.merge(adapted)
        after = merged(input_ids=ids).logits
    assert type(merged).__name__ == "LlamaForCausalLM" and not hasattr(merged, "peft_config")
    torch.testing.assert_close(merged.model.layers[0].self_attn.q_proj.weight, expected.detach())
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="call apply"):
        lora.merge(toy_llama())


def test_unknown_target_module_names_the_layers():
    with pytest.raises(SpecError, match=r"peft\.target_modules: \['qkv'\] match no layer.*q_proj"):
        LoRA(LoRAConfig(target_modules=["qkv"])).apply(toy_llama())


def test_loading_from_a_folder_without_adapter_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a peft adapter folder"):
        LoRA(LoRAConfig()).load(toy_llama(), tmp_path)


def test_saving_an_unadapted_module_is_refused(tmp_path):
    with pytest.raises(TypeError, match="call apply"):
        LoRA(LoRAConfig()).save(toy_llama(), tmp_path)


@pytest.mark.parametrize("bad", [{"r": 0}, {"dropout": 1.0}, {"target_modules": []}, {"rank": 8}])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError):
        LoRAConfig.model_validate({"type": "lora", **bad})
