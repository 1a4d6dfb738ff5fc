"""The reference components the core itself provides (registered by :mod:`slam_core.runtime.builtin`).

- ``toy-encoder``: a small log-mel + conv-subsampling + transformer encoder with random
  weights, for tests, smoke runs and plugin authors who need an encoder to test against.
- ``toy-llm``: a Llama-architecture causal LM built from a config with random weights and a
  byte-level tokenizer; any shape (a Vicuna-7B shape builds on the meta device for
  ``slam inspect``).

This module imports no torch; the factories do.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.hookspecs import hookimpl
from slam_core.records import API_VERSION, ComponentSpec


class ToyEncoderConfig(BaseModel):
    """A waveform → log-mel → 2 strided convs → transformer encoder (random init)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["toy-encoder"] = "toy-encoder"
    sample_rate: int = Field(16000, gt=0)
    n_mels: int = Field(80, gt=0)
    hop_length: int = Field(160, gt=0, description="waveform samples per feature frame")
    dim: int = Field(64, gt=0)
    layers: int = Field(2, ge=0)
    heads: int = Field(4, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide(self) -> ToyEncoderConfig:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        return self


class ToyLLMConfig(BaseModel):
    """A Llama-architecture causal LM with random weights and a byte-level tokenizer."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["toy-llm"] = "toy-llm"
    hidden_size: int = Field(64, gt=0)
    num_layers: int = Field(2, gt=0)
    num_heads: int = Field(4, gt=0)
    num_kv_heads: int | None = Field(None, gt=0)
    intermediate_size: int = Field(128, gt=0)
    vocab_size: int = Field(320, ge=259, description="at least the byte tokenizer's 259 tokens")
    max_position_embeddings: int = Field(2048, gt=0)
    dtype: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide(self) -> ToyLLMConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        return self


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
