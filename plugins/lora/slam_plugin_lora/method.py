"""LoRA through peft: apply, save and load adapters in peft's own folder format."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from slam_core.components import PEFTMethod
from slam_core.errors import SpecError
from slam_plugin_lora.plugin import LoRAConfig


class LoRA(PEFTMethod):
    """Wraps ``module`` in a peft ``PeftModel`` with a LoRA adapter."""

    def __init__(self, config: LoRAConfig):
        self.config = config

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.config.r,
            lora_alpha=self.config.alpha,
            lora_dropout=self.config.dropout,
            target_modules=list(self.config.target_modules),
            bias=self.config.bias,
        )

    def apply(self, module: nn.Module) -> nn.Module:
        from peft import get_peft_model

        names = {name.rsplit(".", 1)[-1] for name, _ in module.named_modules()}
        missing = [target for target in self.config.target_modules if target not in names]
        if missing:
            raise SpecError(
                [
                    f"peft.target_modules: {missing} match no layer of {type(module).__name__}; "
                    f"its linear layers include: {_linear_layer_names(module)}"
                ]
            )
        return get_peft_model(module, self.peft_config())

    def save(self, module: nn.Module, directory: str | Path) -> None:
        if not hasattr(module, "peft_config"):
            raise TypeError(f"{type(module).__name__} has no LoRA adapter to save: call apply() first")
        module.save_pretrained(str(directory))

    def load(self, module: nn.Module, directory: str | Path) -> nn.Module:
        from peft import PeftModel

        directory = Path(directory)
        if not (directory / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{directory} is not a peft adapter folder (no adapter_config.json)")
        return PeftModel.from_pretrained(module, str(directory), is_trainable=True)

    def merge(self, module: nn.Module) -> nn.Module:
        """``W + (alpha / r) B A`` folded into each adapted layer (peft's ``merge_and_unload``)."""
        if not hasattr(module, "merge_and_unload"):
            raise TypeError(f"{type(module).__name__} has no LoRA adapter to merge: call apply() first")
        return module.merge_and_unload()


def _linear_layer_names(module: nn.Module) -> str:
    names = sorted({name.rsplit(".", 1)[-1] for name, child in module.named_modules() if isinstance(child, nn.Linear)})
    return ", ".join(names) or "(none)"
