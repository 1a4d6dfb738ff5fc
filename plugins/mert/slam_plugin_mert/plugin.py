"""Registers the ``mert`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec
from slam_plugin_mert.presets import OVERRIDABLE, preset_fields

OverrideValue = int | float | bool | str | list[int]


class MERTEncoderConfig(BaseModel):
    """MERT-v1 music encoder: 24 kHz waveform → 75 Hz frames of one hidden layer (or a learned mix)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["mert"] = "mert"
    path: str | None = Field(
        None,
        description="Hugging Face checkpoint folder as released on the hub (config.json, pytorch_model.bin or "
        "model.safetensors, preprocessor_config.json); null = random init from `size`",
    )
    size: Literal["95m", "330m"] = Field("95m", description="preset used when `path` is null")
    overrides: dict[str, OverrideValue] = Field(
        default_factory=dict,
        description="config.json fields replacing the preset's (random init only, e.g. tiny test shapes)",
    )
    layer: int | Literal["weighted"] = Field(
        -1,
        description="hidden state returned: 0 = input of the first transformer layer, L = last layer "
        "(negative counts from the end), or 'weighted' = learned softmax-weighted sum of all L + 1",
    )
    resample: bool = Field(True, description="resample other rates to the model's rate (else refuse them)")
    max_seconds: float | None = Field(None, gt=0, description="refuse longer clips; null = no limit")
    normalize: bool | None = Field(
        None,
        description="zero-mean unit-variance per clip; null = the checkpoint's preprocessor_config.json "
        "do_normalize (false for MERT-v1-95M; false for random init)",
    )
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"

    @model_validator(mode="after")
    def _check(self) -> MERTEncoderConfig:
        if self.overrides and self.path is not None:
            raise ValueError("overrides apply to a random-init encoder only; drop them or set path: null")
        unknown = sorted(set(self.overrides) - OVERRIDABLE)
        if unknown:
            raise ValueError(f"unknown MERT config field(s) in overrides: {unknown}; known: {sorted(OVERRIDABLE)}")
        if self.path is None and isinstance(self.layer, int):
            layers = int(preset_fields(self.size, self.overrides)["num_hidden_layers"])
            if not -(layers + 1) <= self.layer <= layers:
                raise ValueError(f"layer {self.layer} is out of range for {layers} transformer layers")
        return self


@hookimpl
def slam_encoders() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="mert",
            config=MERTEncoderConfig,
            factory="slam_plugin_mert.encoder:MERTEncoder",
            api="1.0",  # the contract version this plugin was written for
            description="MERT-v1 95M/330M music encoder (24 kHz → 75 Hz), HF checkpoints without remote code",
        )
    ]
