"""Registers the ``mert`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.configs import (
    DType,
    InputPath,
    MixedLayer,
    TransformerShape,
    layer_index,
    refuse_shape_with_path,
    renamed_keys,
)
from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec
from slam_plugin_mert.presets import preset_fields


class MERTShape(TransformerShape):
    """Overrides of the ``size`` preset for a random-init encoder (null: the preset's value).

    Shared meanings use the names every plugin's ``shape`` uses; the rest are ``config.json`` names.
    """

    component = "mert"
    upstream_names = {
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "layer_norm_first": "do_stable_layer_norm",
        "activation": "hidden_act",
        "conv_pos_kernel": "num_conv_pos_embeddings",
        "conv_pos_groups": "num_conv_pos_embedding_groups",
    }
    layer_norm_first: bool | None = Field(None, description="pre-LN layers (330m), final LayerNorm after the last")
    activation: str | None = Field(None, description="transformer activation (gelu)")
    conv_pos_kernel: int | None = Field(None, gt=0, description="kernel of the convolutional position embedding")
    conv_pos_groups: int | None = Field(None, gt=0)
    conv_dim: list[int] | None = Field(None, description="channels of the 7 front-end convolutions")
    conv_kernel: list[int] | None = None
    conv_stride: list[int] | None = None
    conv_bias: bool | None = None
    feat_extract_norm: Literal["group", "layer"] | None = None
    feat_extract_activation: str | None = None
    sample_rate: int | None = Field(None, gt=0)
    layer_norm_eps: float | None = Field(None, gt=0)
    feat_proj_layer_norm: bool | None = None
    conv_pos_batch_norm: bool | None = None
    feature_extractor_cqt: bool | None = None
    deepnorm: bool | None = None
    attention_relax: float | None = None
    hidden_dropout: float | None = Field(None, ge=0, lt=1)
    attention_dropout: float | None = Field(None, ge=0, lt=1)
    activation_dropout: float | None = Field(None, ge=0, lt=1)
    feat_proj_dropout: float | None = Field(None, ge=0, lt=1)


class MERTEncoderConfig(BaseModel):
    """MERT-v1 music encoder: 24 kHz waveform → 75 Hz frames of one hidden layer (or a learned mix)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["mert"] = "mert"
    path: InputPath | None = Field(
        None,
        description="Hugging Face checkpoint folder as released on the hub (config.json, pytorch_model.bin or "
        "model.safetensors, preprocessor_config.json); null = random init from `size` and `shape`",
    )
    size: Literal["95m", "330m"] | None = Field(None, description="preset for random init (null: 95m)")
    shape: MERTShape | None = Field(None, description="random init: fields replacing the preset's")
    layer: MixedLayer = Field(
        None,
        description="hidden state returned: 0 = input of the first transformer layer, k = output of layer k "
        "(negative counts from the end), null = the final output, or 'weighted' = learned softmax-weighted "
        "sum of all L + 1",
    )
    resample: bool = Field(True, description="resample other rates to the model's rate (else refuse them)")
    max_seconds: float | None = Field(None, gt=0, description="refuse longer clips; null = no limit")
    normalize: bool | None = Field(
        None,
        description="zero-mean unit-variance per clip; null = the checkpoint's preprocessor_config.json "
        "do_normalize (false for MERT-v1-95M; false for random init)",
    )
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, {"overrides": "shape", **MERTShape.flat_keys()}, "mert")

    @model_validator(mode="after")
    def _check(self) -> MERTEncoderConfig:
        refuse_shape_with_path("mert", self.path, size=self.size, shape=self.shape)
        if self.path is None and isinstance(self.layer, int):
            layer_index(self.layer, int(self.preset()["num_hidden_layers"]))
        return self

    def preset(self) -> dict[str, Any]:
        """The random-init ``config.json`` fields: the ``size`` preset (95m by default) with ``shape`` applied."""
        return preset_fields(self.size or "95m", self.shape.upstream() if self.shape else None)


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
