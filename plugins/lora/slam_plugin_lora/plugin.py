"""Registers ``lora`` with SLAM (imports no torch or peft)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec


class LoRAConfig(BaseModel):
    """Low-rank adapters on the named linear layers; defaults follow SLAM-LLM (r=32, α=32, q/k/v/o)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["lora"] = "lora"
    r: int = Field(32, gt=0, description="rank of the update")
    alpha: float = Field(32, gt=0, description="scaling numerator: the update is scaled by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="names (suffixes) of the linear layers that get adapters",
    )
    bias: Literal["none", "all", "lora_only"] = "none"


@hookimpl
def slam_peft_methods() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="lora",
            config=LoRAConfig,
            factory="slam_plugin_lora.method:LoRA",
            api="1.0",  # the contract version this plugin was written for
            description="LoRA adapters via peft (saved as a peft adapter folder)",
        )
    ]
