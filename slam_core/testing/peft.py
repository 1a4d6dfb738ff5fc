"""The rules of PEFT methods, applied to a small base LLM module."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from slam_core.components import PEFTMethod
from slam_core.testing.base import ComponentConformance
from slam_core.testing.modules import assert_same
from slam_core.testing.rules import checks, require


class PEFTConformance(ComponentConformance):
    """PEFT contract, applied to a small base LLM module (override :meth:`base_module`)."""

    kind = "peft"
    contract = PEFTMethod
    #: Whether the adapted model equals the base model before training (true for LoRA).
    identity_at_init: ClassVar[bool] = True

    def base_module(self) -> nn.Module:
        from slam_core.builtin import ToyLLMConfig
        from slam_core.toy import build_toy_llm

        return build_toy_llm(
            ToyLLMConfig(shape={"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48})
        ).model

    def example_ids(self) -> torch.Tensor:
        return torch.arange(3, 3 + 2 * 7).reshape(2, 7)

    def logits(self, module: nn.Module) -> torch.Tensor:
        return module(input_ids=self.example_ids()).logits

    def applied(self) -> tuple[PEFTMethod, nn.Module]:
        method = self.build()
        torch.manual_seed(self.seed)
        base = self.base_module().requires_grad_(False)
        return method, method.apply(base)

    @checks("adapters-only-trainable")
    def test_adapters_only_trainable(self):
        base_names = {name for name, _ in self.base_module().named_parameters()}
        _, module = self.applied()
        trainable = [name for name, p in module.named_parameters() if p.requires_grad]
        require(trainable, "adapters-only-trainable", "apply() left no trainable parameter")
        base_trainable = [name for name in trainable if _strip_wrappers(name) in base_names]
        require(
            not base_trainable,
            "adapters-only-trainable",
            lambda: f"{len(base_trainable)} base weights are trainable after apply(), e.g. {base_trainable[:3]}",
        )

    @checks("identity-at-init")
    def test_identity_at_init(self):
        if not self.identity_at_init:
            pytest.skip("this method changes the output at initialisation")
        torch.manual_seed(self.seed)
        base = self.base_module().eval()
        with torch.no_grad():
            reference = self.logits(base)
            adapted = self.build().apply(base).eval()
            logits = self.logits(adapted)
        assert_same("identity-at-init", logits, reference, "the adapted model's logits", atol=1e-6, rtol=0)

    @checks("gradients-reach-adapters-only")
    def test_gradients_reach_adapters_only(self):
        _, module = self.applied()
        module.train()
        self.logits(module).float().square().mean().backward()
        for name, parameter in module.named_parameters():
            if parameter.requires_grad:
                require(
                    parameter.grad is not None and bool(torch.isfinite(parameter.grad).all()),
                    "gradients-reach-adapters-only",
                    f"trainable {name} got {'no' if parameter.grad is None else 'a non-finite'} gradient",
                )
            else:
                require(parameter.grad is None, "gradients-reach-adapters-only", f"frozen {name} got a gradient")

    def trained(self) -> tuple[PEFTMethod, nn.Module]:
        """:meth:`applied` with random adapter values (as if trained), in eval mode."""
        method, module = self.applied()
        with torch.no_grad():
            for parameter in module.parameters():
                if parameter.requires_grad:
                    parameter.copy_(torch.randn_like(parameter) * 0.1)
        return method, module.eval()

    @checks("adapter-save-load-round-trip")
    def test_adapter_save_load_round_trip(self, tmp_path):
        method, module = self.trained()
        with torch.no_grad():
            expected = self.logits(module)
        method.save(module, tmp_path / "adapter")
        torch.manual_seed(self.seed)
        loaded = method.load(self.base_module(), tmp_path / "adapter").eval()
        with torch.no_grad():
            logits = self.logits(loaded)
        what = "logits after save() and load() into a fresh base"
        assert_same("adapter-save-load-round-trip", logits, expected, what, atol=1e-6, rtol=0)

    @checks("merge-keeps-logits")
    def test_merge_keeps_logits(self):
        method, module = self.trained()
        with torch.no_grad():
            expected = self.logits(module)
        try:
            merged = method.merge(module)
        except NotImplementedError:
            pytest.skip("this method does not merge its adapters (slam export keeps them: --keep-adapter)")
        base = {name: tuple(p.shape) for name, p in self.base_module().named_parameters()}
        own = {name: tuple(p.shape) for name, p in merged.named_parameters()}
        require(
            own == base,
            "merge-keeps-logits",
            lambda: f"merge() returned parameters other than the base's: {sorted(set(own) ^ set(base))[:3]}",
        )
        with torch.no_grad():
            logits = self.logits(merged.eval())
        assert_same("merge-keeps-logits", logits, expected, "the merged model's logits", atol=1e-5, rtol=1e-5)


def _strip_wrappers(name: str) -> str:
    """``base_model.model.layers.0.q_proj.base_layer.weight`` -> ``layers.0.q_proj.weight``."""
    for prefix in ("base_model.model.", "base_model."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.replace(".base_layer", "")
