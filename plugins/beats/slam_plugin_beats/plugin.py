"""Registers the ``beats`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slam_core.configs import DType, InputPath, TransformerShape, refuse_shape_with_path, renamed_keys
from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec

Activation = Literal["gelu", "gelu_accurate", "relu", "tanh", "linear"]


class BeatsArchitecture(BaseModel):
    """The architecture of a BEATs model, named as in the ``cfg`` dict of Microsoft's checkpoints.

    The defaults are those of the released iter3 / iter3+ checkpoints (BEATs base, 90M parameters).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    input_patch_size: int = Field(16, gt=0, le=128, description="side of the square fbank patches (frames × bins)")
    embed_dim: int = Field(512, gt=0, description="patch embedding width")
    conv_bias: bool = Field(False, description="bias in the patch embedding convolution")
    encoder_layers: int = Field(12, gt=0)
    encoder_embed_dim: int = Field(768, gt=0, description="transformer width = the encoder's output_dim")
    encoder_ffn_embed_dim: int = Field(3072, gt=0)
    encoder_attention_heads: int = Field(12, gt=0)
    activation_fn: Activation = "gelu"
    layer_norm_first: bool = Field(False, description="pre-LN transformer layers (BEATs uses post-LN + deep norm)")
    deep_norm: bool = Field(True, description="DeepNorm residual scaling (2·layers)^(1/4)")
    conv_pos: int = Field(128, gt=0, description="kernel of the convolutional positional embedding")
    conv_pos_groups: int = Field(16, gt=0)
    relative_position_embedding: bool = True
    num_buckets: int = Field(320, gt=1, description="relative-position buckets (both directions)")
    max_distance: int = Field(800, gt=0, description="distance mapped to the last bucket")
    gru_rel_pos: bool = Field(True, description="gate the relative position bias with the query")
    layer_wise_gradient_decay_ratio: float = Field(
        0.6, gt=0, description="gradient scale at the input of every layer (backward only)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> BeatsArchitecture:
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ValueError(
                f"hidden_size (encoder_embed_dim) {self.encoder_embed_dim} is not divisible by "
                f"num_heads (encoder_attention_heads) {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise ValueError(
                f"hidden_size (encoder_embed_dim) {self.encoder_embed_dim} is not divisible by "
                f"conv_pos_groups {self.conv_pos_groups}"
            )
        if self.deep_norm and self.layer_norm_first:
            raise ValueError("deep_norm and layer_norm_first cannot both be true (BEATs allows one or the other)")
        if self.relative_position_embedding and self.num_buckets < 4:
            raise ValueError(f"num_buckets must be at least 4, got {self.num_buckets}")
        if self.relative_position_embedding and self.max_distance <= self.num_buckets // 4:
            raise ValueError(
                f"max_distance {self.max_distance} must exceed num_buckets // 4 = {self.num_buckets // 4}, "
                "the last distance with a bucket of its own"
            )
        return self


#: Names of the architecture fields (a checkpoint's ``cfg`` names).
ARCHITECTURE_FIELDS = frozenset(BeatsArchitecture.model_fields)


class BeatsShape(TransformerShape):
    """Overrides of the ``size`` preset for a random-init encoder (null: the preset's value)."""

    component = "beats"
    upstream_names = {
        "patch_size": "input_patch_size",
        "patch_embed_dim": "embed_dim",
        "num_layers": "encoder_layers",
        "hidden_size": "encoder_embed_dim",
        "intermediate_size": "encoder_ffn_embed_dim",
        "num_heads": "encoder_attention_heads",
        "activation": "activation_fn",
        "conv_pos_kernel": "conv_pos",
    }
    patch_size: int | None = Field(None, gt=0, le=128, description="side of the square fbank patches")
    patch_embed_dim: int | None = Field(None, gt=0, description="patch embedding width")
    conv_bias: bool | None = Field(None, description="bias in the patch embedding convolution")
    activation: Activation | None = None
    layer_norm_first: bool | None = Field(None, description="pre-LN layers (BEATs: post-LN + deep norm)")
    deep_norm: bool | None = Field(None, description="DeepNorm residual scaling (2·layers)^(1/4)")
    conv_pos_kernel: int | None = Field(None, gt=0, description="kernel of the convolutional position embedding")
    conv_pos_groups: int | None = Field(None, gt=0)
    relative_position_embedding: bool | None = None
    num_buckets: int | None = Field(None, gt=1, description="relative-position buckets (both directions)")
    max_distance: int | None = Field(None, gt=0, description="distance mapped to the last bucket")
    gru_rel_pos: bool | None = Field(None, description="gate the relative position bias with the query")
    layer_wise_gradient_decay_ratio: float | None = Field(
        None, gt=0, description="gradient scale at the input of every layer (backward only)"
    )


class BeatsConfig(BaseModel):
    """BEATs encoder: 128-bin Kaldi fbank → 16×16 patches → transformer with relative position bias.

    With ``path`` the architecture is read from the checkpoint's ``cfg``; with ``path: null`` the
    ``size`` preset (``base``: the released iter3 / iter3+ shape, 90M parameters) with ``shape``
    applied builds a random-init model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["beats"] = "beats"
    path: InputPath | None = Field(
        None, description="a released BEATs .pt checkpoint ({'cfg', 'model'}); null = random init"
    )
    size: Literal["base"] | None = Field(None, description="preset for random init (null: base)")
    shape: BeatsShape | None = Field(None, description="random init: fields replacing the preset's")
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")
    resample: bool = Field(True, description="resample audio at another rate to 16 kHz (false: refuse it)")
    max_seconds: float | None = Field(None, gt=0, description="refuse longer audio; null = no limit")
    fbank_mean: float = Field(15.41663, description="fbank normalisation: (x - mean) / (2 * std)")
    fbank_std: float = Field(6.55582, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, BeatsShape.flat_keys(), "beats")

    @model_validator(mode="after")
    def _shape_is_consistent(self) -> BeatsConfig:
        refuse_shape_with_path("beats", self.path, size=self.size, shape=self.shape)
        if self.path is None:
            self.architecture()
        return self

    def architecture(self) -> BeatsArchitecture:
        """The random-init architecture: the ``size`` preset (the released shape) with ``shape`` applied."""
        if self.path is not None:
            raise ValueError(f"beats: the shape of {self.path} comes from the checkpoint")
        try:
            return BeatsArchitecture.model_validate(self.shape.upstream() if self.shape else {})
        except ValidationError as exc:
            problems = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
            raise ValueError(f"beats: shape: {problems}") from None


@hookimpl
def slam_encoders() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="beats",
            config=BeatsConfig,
            factory="slam_plugin_beats.encoder:BeatsEncoder",
            api="1.0",
            description="BEATs audio transformer (Microsoft iter3 / iter3+ checkpoints), 50 tokens/s",
        )
    ]
