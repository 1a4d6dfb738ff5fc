"""Registers the ``whisper`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec
from slam_plugin_whisper.presets import PRESETS, SizeName, WhisperShape

#: Fields that describe a random-init shape; they go once a checkpoint (``path``) is set.
SHAPE_FIELDS = (
    "size",
    "d_model",
    "encoder_layers",
    "encoder_attention_heads",
    "encoder_ffn_dim",
    "num_mel_bins",
    "max_source_positions",
)


class WhisperEncoderConfig(BaseModel):
    """The Whisper audio encoder: pretrained (``path``) or random init from a size preset plus overrides."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["whisper"] = "whisper"
    path: str | None = Field(
        None,
        description="Hugging Face Whisper directory or OpenAI-format .pt file; null = random init from the shape",
    )
    size: SizeName | None = Field(None, description="shape preset for random init (default tiny)")
    d_model: int | None = Field(None, gt=0, description="override of the preset's width")
    encoder_layers: int | None = Field(None, gt=0)
    encoder_attention_heads: int | None = Field(None, gt=0)
    encoder_ffn_dim: int | None = Field(None, gt=0)
    num_mel_bins: Literal[80, 128] | None = None
    max_source_positions: int | None = Field(
        None, gt=0, description="output frames per window; the window is 2x this many mel frames (1500 = 30 s)"
    )
    mode: Literal["variable", "pad_to_30s"] = Field(
        "variable", description="variable: no padding, positions sliced; pad_to_30s: every window padded (original)"
    )
    long_audio: Literal["error", "chunk"] = Field(
        "error", description="audio over one window (30 s): refuse, or encode ≤30 s pieces and concatenate"
    )
    resample: bool = Field(True, description="resample audio at another rate to 16 kHz (false: refuse it)")
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"

    @model_validator(mode="after")
    def _shape_is_consistent(self) -> WhisperEncoderConfig:
        if self.path is not None:
            given = [name for name in SHAPE_FIELDS if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"whisper: {', '.join(given)} only apply to random init (path: null); "
                    f"the checkpoint {self.path} defines the shape"
                )
            return self
        shape = self.shape()
        if shape.d_model % shape.encoder_attention_heads:
            raise ValueError(
                f"whisper: d_model {shape.d_model} is not divisible by "
                f"encoder_attention_heads {shape.encoder_attention_heads}"
            )
        return self

    def shape(self) -> WhisperShape:
        """The random-init shape: the ``size`` preset (tiny by default) with the given overrides."""
        if self.path is not None:
            raise ValueError(f"whisper: the shape of {self.path} comes from the checkpoint, not the config")
        preset = PRESETS[self.size or "tiny"]
        overrides = {name: getattr(self, name) for name in WhisperShape._fields if getattr(self, name) is not None}
        return preset._replace(**overrides)


@hookimpl
def slam_encoders() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="whisper",
            config=WhisperEncoderConfig,
            factory="slam_plugin_whisper.encoder:WhisperEncoder",
            api="1.0",  # the contract version this plugin was written for
            description="Whisper audio encoder via transformers (HF dir or OpenAI .pt), 50 Hz output",
        )
    ]
