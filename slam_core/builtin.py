"""The reference components the core itself provides (registered by :mod:`slam_core.runtime.builtin`).

- ``toy-encoder``: a small log-mel + conv-subsampling + transformer encoder with random
  weights, for tests, smoke runs and plugin authors who need an encoder to test against.
- ``toy-llm``: a Llama-architecture causal LM built from a config with random weights and a
  byte-level tokenizer; any shape (a Vicuna-7B shape builds on the meta device for
  ``slam inspect``).

This module imports no torch; the factories do.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.configs import DType, Shape, renamed_keys
from slam_core.hookspecs import hookimpl
from slam_core.records import API_VERSION, ComponentSpec


class ToyEncoderShape(Shape):
    """The toy encoder's architecture (every field has a default)."""

    component = "toy-encoder"
    num_mel_bins: int = Field(80, gt=0)
    hidden_size: int = Field(64, gt=0, description="transformer width = the encoder's output_dim")
    num_layers: int = Field(2, ge=0)
    num_heads: int = Field(4, gt=0)
    intermediate_size: int | None = Field(None, gt=0, description="feed-forward width; null: 4 × hidden_size")

    @model_validator(mode="after")
    def _heads_divide(self) -> ToyEncoderShape:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"toy-encoder: hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        return self


class ToyEncoderConfig(BaseModel):
    """A waveform → log-mel → 2 strided convs → transformer encoder (random init)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["toy-encoder"] = "toy-encoder"
    sample_rate: int = Field(16000, gt=0)
    hop_length: int = Field(160, gt=0, description="waveform samples per feature frame")
    shape: ToyEncoderShape = Field(default_factory=ToyEncoderShape)
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        old = {"n_mels": "shape.num_mel_bins", "dim": "shape.hidden_size", "layers": "shape.num_layers"}
        return renamed_keys(data, {**old, "heads": "shape.num_heads", **ToyEncoderShape.flat_keys()}, "toy-encoder")


class ToyLLMShape(Shape):
    """The toy LLM's Llama architecture (every field has a default)."""

    component = "toy-llm"
    hidden_size: int = Field(64, gt=0, description="divisible by num_heads")
    num_layers: int = Field(2, gt=0)
    num_heads: int = Field(4, gt=0)
    num_kv_heads: int | None = Field(None, gt=0, description="grouped-query attention; null: num_heads")
    intermediate_size: int = Field(128, gt=0, description="feed-forward width")
    vocab_size: int = Field(320, ge=259, description="at least the byte tokenizer's 259 tokens")
    max_position_embeddings: int = Field(2048, gt=0)

    @model_validator(mode="after")
    def _heads_divide(self) -> ToyLLMShape:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"toy-llm: hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"toy-llm: num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}"
            )
        return self


class ToyLLMConfig(BaseModel):
    """A Llama-architecture causal LM with random weights and a byte-level tokenizer."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["toy-llm"] = "toy-llm"
    shape: ToyLLMShape = Field(default_factory=ToyLLMShape)
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")
    seed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, ToyLLMShape.flat_keys(), "toy-llm")


@hookimpl
def slam_encoders() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            "toy-encoder",
            ToyEncoderConfig,
            "slam_core.toy:ToyEncoder",
            api=API_VERSION,
            description="random-init log-mel conv/transformer encoder for tests",
        )
    ]


@hookimpl
def slam_llms() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            "toy-llm",
            ToyLLMConfig,
            "slam_core.toy:build_toy_llm",
            api=API_VERSION,
            description="random-init Llama-architecture LM of any shape, byte tokenizer",
        )
    ]
