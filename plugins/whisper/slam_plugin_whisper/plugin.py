"""Registers the ``whisper`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.configs import DType, InputPath, TransformerShape, refuse_shape_with_path, renamed_keys
from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec
from slam_plugin_whisper.presets import PRESETS, SizeName, WhisperDims


class WhisperShape(TransformerShape):
    """Overrides of the ``size`` preset for a random-init encoder (null: the preset's value)."""

    component = "whisper"
    upstream_names = {
        "hidden_size": "d_model",
        "num_layers": "encoder_layers",
        "num_heads": "encoder_attention_heads",
        "intermediate_size": "encoder_ffn_dim",
        "max_position_embeddings": "max_source_positions",
    }
    num_mel_bins: Literal[80, 128] | None = None
    max_position_embeddings: int | None = Field(
        None, gt=0, description="output frames per window; the window is 2x this many mel frames (1500 = 30 s)"
    )


class WhisperEncoderConfig(BaseModel):
    """The Whisper audio encoder: pretrained (``path``) or random init from a ``size`` preset and ``shape``."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["whisper"] = "whisper"
    path: InputPath | None = Field(
        None,
        description="Hugging Face Whisper directory or OpenAI-format .pt file; null = random init from the shape",
    )
    size: SizeName | None = Field(None, description="shape preset for random init (null: tiny)")
    shape: WhisperShape | None = Field(None, description="random init: fields replacing the preset's")
    mode: Literal["variable", "pad_to_30s"] = Field(
        "variable", description="variable: no padding, positions sliced; pad_to_30s: every window padded (original)"
    )
    long_audio: Literal["error", "chunk"] = Field(
        "error", description="audio over one window (30 s): refuse, or encode ≤30 s pieces and concatenate"
    )
    resample: bool = Field(True, description="resample audio at another rate to 16 kHz (false: refuse it)")
    hop_length: Literal[160, 320] = Field(
        160,
        description="mel hop in samples: 160 is Whisper's (100 mel, 50 output frames/s; what pretrained weights "
        "expect); 320 halves both rates, for a cheaper encoder trained that way (a folder saved from it records "
        "the hop, and loading it with another is refused)",
    )
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, WhisperShape.flat_keys(), "whisper")

    @model_validator(mode="after")
    def _shape_is_consistent(self) -> WhisperEncoderConfig:
        refuse_shape_with_path("whisper", self.path, size=self.size, shape=self.shape)
        if self.path is None:
            dims = self.architecture()
            if dims.d_model % dims.encoder_attention_heads:
                raise ValueError(
                    f"whisper: hidden_size {dims.d_model} is not divisible by num_heads {dims.encoder_attention_heads}"
                )
        return self

    def architecture(self) -> WhisperDims:
        """The random-init dimensions: the ``size`` preset (tiny by default) with ``shape`` applied."""
        if self.path is not None:
            raise ValueError(f"whisper: the shape of {self.path} comes from the checkpoint, not the config")
        preset = PRESETS[self.size or "tiny"]
        return preset._replace(**self.shape.upstream()) if self.shape else preset


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
