"""Registers the ``av-hubert`` encoder with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec
from slam_plugin_av_hubert.presets import CROP_SIZE, IMAGE_MEAN, IMAGE_STD, PRESETS

OverrideValue = int | bool | str | list[int]


class AVHubertShape(BaseModel):
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
    def _divisible(self) -> AVHubertShape:
        for name in ("encoder_attention_heads", "conv_pos_groups"):
            if self.encoder_embed_dim % getattr(self, name):
                raise ValueError(
                    f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by {name} {getattr(self, name)}"
                )
        if min(self.resnet_widths) <= 0:
            raise ValueError(f"resnet_widths must be positive, got {list(self.resnet_widths)}")
        return self


SHAPE_FIELDS = frozenset(AVHubertShape.model_fields)


def preset_shape(size: str, overrides: dict | None = None) -> AVHubertShape:
    """The ``size`` preset with ``overrides`` applied (raises ``ValueError`` naming bad fields)."""
    unknown = sorted(set(overrides or {}) - SHAPE_FIELDS)
    if unknown:
        raise ValueError(f"unknown AV-HuBERT shape field(s) in overrides: {unknown}; known: {sorted(SHAPE_FIELDS)}")
    try:
        return AVHubertShape.model_validate({**PRESETS[size], **(overrides or {})})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'shape'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"invalid AV-HuBERT shape ({size} preset + overrides): {problems}") from None


class AVHubertConfig(BaseModel):
    """AV-HuBERT encoder: 25 fps lip crops and/or 16 kHz audio -> 25 Hz hidden frames.

    With ``path: null`` the ``size`` preset (plus ``overrides``) is built with random weights. A fairseq
    ``.pt`` checkpoint brings its own architecture (its ``cfg``); a ``.safetensors`` file holds only
    tensors, so ``size`` / ``overrides`` describe it.
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["av-hubert"] = "av-hubert"
    path: str | None = Field(
        None,
        description="a released fairseq checkpoint (.pt: pretrained AVHubertModel, or fine-tuned AVHubertSeq2Seq / "
        "AVHubertCtc) or a .safetensors state dict; null = random init from `size`",
    )
    size: Literal["base", "large"] = Field("large", description="Base: 12 x 768, Large: 24 x 1024")
    overrides: dict[str, OverrideValue] = Field(
        default_factory=dict, description="shape fields replacing the preset's (random init or .safetensors)"
    )
    modality: Literal["video", "audio", "audio-visual"] = Field(
        "video", description="video = lip reading (VSR), audio = ASR on 16 kHz audio, audio-visual = both"
    )
    layer: int | None = Field(
        None,
        ge=1,
        description="return the output of transformer layer k (1-based; later layers are not built, no final "
        "LayerNorm), as upstream's output_layer; null = the full encoder's output",
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

    @model_validator(mode="after")
    def _check(self) -> AVHubertConfig:
        if self.overrides and self.path is not None and not self.path.endswith(".safetensors"):
            raise ValueError(
                "overrides apply to a random-init encoder or a .safetensors file; a fairseq .pt checkpoint "
                "brings its own architecture: drop overrides"
            )
        if (self.modality_dropout or self.audio_dropout) and self.modality != "audio-visual":
            raise ValueError(
                f"modality_dropout / audio_dropout need modality: audio-visual (got modality: {self.modality})"
            )
        if self.path is None or self.path.endswith(".safetensors"):
            shape = preset_shape(self.size, self.overrides)
            if self.layer is not None and self.layer > shape.encoder_layers:
                raise ValueError(f"layer {self.layer} is out of range: the model has {shape.encoder_layers} layers")
        return self


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
