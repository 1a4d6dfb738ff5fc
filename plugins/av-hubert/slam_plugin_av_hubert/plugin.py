"""Registers the ``av-hubert`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slam_core.configs import (
    DType,
    InputPath,
    Layer,
    TransformerShape,
    layer_index,
    refuse_shape_with_path,
    renamed_keys,
)
from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec
from slam_plugin_av_hubert.presets import CROP_SIZE, IMAGE_MEAN, IMAGE_STD, PRESETS


class AVHubertArchitecture(BaseModel):
    """The architecture, with the field names of fairseq's ``AVHubertConfig`` (a checkpoint's ``cfg.model``).

    ``resnet_widths`` (the ResNet-18 stage widths, 64/128/256/512 in every release) is not an upstream
    field; it exists for tiny test models and is read from a checkpoint's tensors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    encoder_layers: int = Field(gt=0)
    encoder_embed_dim: int = Field(gt=0, description="transformer width = the encoder's output_dim")
    encoder_ffn_embed_dim: int = Field(gt=0)
    encoder_attention_heads: int = Field(gt=0)
    layer_norm_first: bool = Field(True, description="pre-LN layers, final LayerNorm after the last layer")
    conv_pos: int = Field(128, gt=0, description="kernel of the convolutional position embedding")
    conv_pos_groups: int = Field(16, gt=0)
    audio_feat_dim: int = Field(104, gt=0, description="26 log-mel bins x 4 stacked frames")
    modality_fuse: Literal["concat", "add"] = "concat"
    resnet_relu_type: Literal["prelu", "relu"] = "prelu"
    activation_fn: Literal["gelu"] = "gelu"
    resnet_widths: tuple[int, int, int, int] = (64, 128, 256, 512)

    @model_validator(mode="after")
    def _divisible(self) -> AVHubertArchitecture:
        for name, field in (
            ("num_heads (encoder_attention_heads)", "encoder_attention_heads"),
            ("conv_pos_groups", "conv_pos_groups"),
        ):
            if self.encoder_embed_dim % getattr(self, field):
                raise ValueError(
                    f"hidden_size (encoder_embed_dim) {self.encoder_embed_dim} is not divisible by {name} "
                    f"{getattr(self, field)}"
                )
        if min(self.resnet_widths) <= 0:
            raise ValueError(f"resnet_widths must be positive, got {list(self.resnet_widths)}")
        return self


ARCHITECTURE_FIELDS = frozenset(AVHubertArchitecture.model_fields)


class AVHubertShape(TransformerShape):
    """Overrides of the ``size`` preset (null: the preset's value): random init, or a ``.safetensors`` file."""

    component = "av-hubert"
    upstream_names = {
        "num_layers": "encoder_layers",
        "hidden_size": "encoder_embed_dim",
        "intermediate_size": "encoder_ffn_embed_dim",
        "num_heads": "encoder_attention_heads",
        "conv_pos_kernel": "conv_pos",
        "activation": "activation_fn",
    }
    layer_norm_first: bool | None = Field(None, description="pre-LN layers, final LayerNorm after the last layer")
    conv_pos_kernel: int | None = Field(None, gt=0, description="kernel of the convolutional position embedding")
    conv_pos_groups: int | None = Field(None, gt=0)
    audio_feat_dim: int | None = Field(None, gt=0, description="26 log-mel bins x 4 stacked frames")
    modality_fuse: Literal["concat", "add"] | None = None
    resnet_relu_type: Literal["prelu", "relu"] | None = None
    activation: Literal["gelu"] | None = None
    resnet_widths: tuple[int, int, int, int] | None = Field(None, description="ResNet-18 stage widths")


def preset_shape(size: str, shape: AVHubertShape | None = None) -> AVHubertArchitecture:
    """The ``size`` preset with ``shape`` applied (raises ``ValueError`` naming bad fields)."""
    try:
        return AVHubertArchitecture.model_validate({**PRESETS[size], **(shape.upstream() if shape else {})})
    except ValidationError as exc:
        problems = "; ".join(
            ": ".join([*map(str, e["loc"]), e["msg"].removeprefix("Value error, ")]) for e in exc.errors()
        )
        raise ValueError(f"av-hubert: invalid shape ({size} preset + shape): {problems}") from None


class AVHubertConfig(BaseModel):
    """AV-HuBERT encoder: 25 fps lip crops and/or 16 kHz audio -> 25 Hz hidden frames.

    With ``path: null`` the ``size`` preset (with ``shape`` applied) is built with random weights. A
    fairseq ``.pt`` checkpoint brings its own architecture (its ``cfg``); a ``.safetensors`` file holds
    only tensors, so ``size`` / ``shape`` describe it.
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["av-hubert"] = "av-hubert"
    path: InputPath | None = Field(
        None,
        description="a released fairseq checkpoint (.pt: pretrained AVHubertModel, or fine-tuned AVHubertSeq2Seq / "
        "AVHubertCtc) or a .safetensors state dict; null = random init from `size`",
    )
    size: Literal["base", "large"] | None = Field(
        None, description="Base: 12 x 768, Large: 24 x 1024 (null: large); random init or .safetensors"
    )
    shape: AVHubertShape | None = Field(None, description="fields replacing the preset's (random init or .safetensors)")
    modality: Literal["video", "audio", "audio-visual"] = Field(
        "video", description="video = lip reading (VSR), audio = ASR on 16 kHz audio, audio-visual = both"
    )
    layer: Layer = Field(
        None,
        description="hidden state returned: 0 = input of the first transformer layer, k = output of layer k "
        "(later layers are not built; as upstream's output_layer), negative counts from the end, "
        "null = the full encoder's output (final LayerNorm included)",
    )
    modality_dropout: float = Field(
        0.0,
        ge=0,
        le=1,
        description="audio-visual training: probability of dropping one modality for a batch (upstream: 0.5)",
    )
    audio_dropout: float = Field(
        0.0, ge=0, le=1, description="given a modality drop, probability that it is the audio (else the video)"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="transformer dropout in training (fine-tuning: 0.0)")
    attention_dropout: float = Field(0.0, ge=0, lt=1)
    activation_dropout: float = Field(0.0, ge=0, lt=1, description="dropout after the FFN activation")
    crop_size: int = Field(CROP_SIZE, gt=0, description="side of the square lip crop the model sees")
    image_mean: float = Field(IMAGE_MEAN, description="pixel normalisation: (x / 255 - mean) / std")
    image_std: float = Field(IMAGE_STD, gt=0)
    normalize_audio: bool = Field(True, description="per-frame normalisation of the filterbank features, as upstream")
    resample: bool = Field(True, description="resample audio at another rate to 16 kHz (false: refuse it)")
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return renamed_keys(data, {"overrides": "shape", **AVHubertShape.flat_keys()}, "av-hubert")

    @model_validator(mode="after")
    def _check(self) -> AVHubertConfig:
        if not self.tensors_only():
            refuse_shape_with_path("av-hubert", self.path, size=self.size, shape=self.shape)
        if (self.modality_dropout or self.audio_dropout) and self.modality != "audio-visual":
            raise ValueError(
                f"modality_dropout / audio_dropout need modality: audio-visual (got modality: {self.modality})"
            )
        if self.path is None or self.tensors_only():
            layer_index(self.layer, self.architecture().encoder_layers)
        return self

    def tensors_only(self) -> bool:
        """``path`` is a ``.safetensors`` file: tensors without an architecture, which ``size`` / ``shape`` give."""
        return self.path is not None and self.path.endswith(".safetensors")

    def architecture(self) -> AVHubertArchitecture:
        """The ``size`` preset (large by default) with ``shape`` applied."""
        return preset_shape(self.size or "large", self.shape)


@hookimpl
def slam_encoders() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="av-hubert",
            config=AVHubertConfig,
            factory="slam_plugin_av_hubert.encoder:AVHubertEncoder",
            api="1.0",  # the contract version this plugin was written for
            description="AV-HuBERT Base/Large: lip video, audio or both -> 25 Hz (fairseq checkpoints, no fairseq)",
        )
    ]
