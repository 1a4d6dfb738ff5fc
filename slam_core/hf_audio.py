"""Configs and records of encoders built on a transformers speech model of the wav2vec 2.0 family.

wav2vec 2.0, HuBERT, WavLM, data2vec-audio, UniSpeech(-SAT), ... share one layout: a strided conv
feature extractor on the raw 16 kHz waveform, a feature projection and a transformer ``encoder``
whose ``hidden_states`` tuple has one entry per layer plus its input. One component,
:class:`slam_core.hf_audio_encoder.HFAudioEncoder`, runs any of them with exact lengths and no
padding leak; a plugin only declares which transformers class it wraps::

    class MyEncoderConfig(HFAudioEncoderConfig):
        type: Literal["unispeech-sat"] = "unispeech-sat"
        model_class: ClassVar[str] = "transformers:UniSpeechSatModel"

    @hookimpl
    def slam_encoders():
        return [hf_audio_encoder(MyEncoderConfig, api="1.0")]

This module imports no torch (a plugin's entry-point module imports it).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from slam_core.configs import DType, InputPath, Layer
from slam_core.records import ComponentSpec, config_type_literal

#: The component every :class:`HFAudioEncoderConfig` is built by.
FACTORY = "slam_core.hf_audio_encoder:HFAudioEncoder"


class HFAudioShape(BaseModel):
    """Fields of the transformers config of a random-init model; each set one replaces the preset's."""

    model_config = ConfigDict(extra="forbid")
    hidden_size: int | None = Field(None, gt=0)
    num_hidden_layers: int | None = Field(None, ge=0)
    num_attention_heads: int | None = Field(None, gt=0)
    intermediate_size: int | None = Field(None, gt=0)
    conv_dim: list[int] | None = Field(None, min_length=1, description="channels of each conv layer")
    conv_kernel: list[int] | None = Field(None, min_length=1)
    conv_stride: list[int] | None = Field(None, min_length=1)
    conv_bias: bool | None = None
    feat_extract_norm: Literal["group", "layer"] | None = None
    do_stable_layer_norm: bool | None = Field(None, description="pre-LN transformer")
    num_conv_pos_embeddings: int | None = Field(None, gt=0)
    num_conv_pos_embedding_groups: int | None = Field(None, gt=0)

    def fields(self) -> dict[str, Any]:
        """The fields that are set, as transformers config keyword arguments."""
        return {key: value for key, value in self.model_dump().items() if value is not None}


class HFAudioEncoderConfig(BaseModel):
    """A transformers wav2vec 2.0-family encoder: a checkpoint folder, or random init from ``size`` + ``shape``.

    Subclasses add ``type: Literal[<name>] = <name>`` and set the class variables ``model_class``
    (``"module:Class"`` of a transformers ``PreTrainedModel``) and, optionally, ``presets`` (size
    name -> transformers config fields; ``size: None`` is the config class's defaults).
    """

    model_config = ConfigDict(extra="forbid")
    model_class: ClassVar[str]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    path: InputPath | None = Field(
        None,
        description="transformers checkpoint folder (config.json, model.safetensors or pytorch_model.bin, "
        "preprocessor_config.json); null = random init from `size` and `shape`",
    )
    size: str | None = Field(None, description="preset of a random-init model; null = the transformers defaults")
    shape: HFAudioShape = Field(default_factory=HFAudioShape, description="random init: fields over the preset")
    layer: Layer | Literal["weighted"] = Field(
        None,
        description="hidden state returned, numbered as transformers' hidden_states (0 = input of the first "
        "layer, k = output of layer k, negative from the end); null = the model's final output; 'weighted' = "
        "a learned softmax-weighted sum of every hidden state (trains even with the encoder frozen)",
    )
    normalize: bool | None = Field(
        None, description="zero-mean unit-variance per clip; null = the folder's preprocessor_config.json do_normalize"
    )
    resample: bool = Field(True, description="resample other rates to the model's rate (else refuse them)")
    max_seconds: float | None = Field(None, gt=0, description="refuse longer clips; null = no limit")
    dtype: DType = "auto"

    @model_validator(mode="after")
    def _check_shape_source(self) -> HFAudioEncoderConfig:
        if self.path is not None and (self.size is not None or self.shape.fields()):
            raise ValueError("size and shape describe a random-init model; the checkpoint at `path` defines its own")
        if self.size is not None and self.size not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ValueError(f"unknown size {self.size!r}; presets: {known}")
        layers = self.random_init_fields().get("num_hidden_layers")
        if self.path is None and isinstance(self.layer, int) and layers is not None:
            check_layer(self.layer, int(layers))
        return self

    def random_init_fields(self) -> dict[str, Any]:
        """The transformers config fields of a random-init model: the preset, then ``shape``."""
        preset = self.presets.get(self.size, {}) if self.size is not None else {}
        return {**preset, **self.shape.fields()}


def check_layer(layer: int, num_layers: int) -> int:
    """``layer`` as an index into the ``num_layers + 1`` hidden states; ``ValueError`` when out of range."""
    if not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(
            f"layer {layer} is out of range: a model of {num_layers} layers has hidden states 0..{num_layers} "
            f"(or {-(num_layers + 1)}..-1)"
        )
    return layer % (num_layers + 1)


def hf_audio_encoder(config: type[HFAudioEncoderConfig], *, api: str, description: str = "") -> ComponentSpec:
    """The record of an encoder whose config subclasses :class:`HFAudioEncoderConfig`."""
    name = config_type_literal(config)
    return ComponentSpec(name=str(name), config=config, factory=FACTORY, api=api, description=description)
