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

from slam_core.configs import DType, InputPath, MixedLayer, TransformerShape, layer_index, refuse_shape_with_path
from slam_core.records import ComponentSpec, config_type_literal

#: The component every :class:`HFAudioEncoderConfig` is built by.
FACTORY = "slam_core.hf_audio_encoder:HFAudioEncoder"


class HFAudioShape(TransformerShape):
    """Random init: fields over the ``size`` preset (null: the preset's value).

    The shared fields use the names every plugin's ``shape`` uses (:class:`TransformerShape`, and
    MERT's names for the same wav2vec 2.0 layout); the conv stack keeps transformers' names. A
    subclass sets ``component`` to its type (for messages) and adds its model's own fields.
    """

    component = "hf-audio"
    upstream_names = {
        "num_layers": "num_hidden_layers",
        "num_heads": "num_attention_heads",
        "conv_pos_kernel": "num_conv_pos_embeddings",
        "conv_pos_groups": "num_conv_pos_embedding_groups",
    }
    conv_dim: list[int] | None = Field(None, min_length=1, description="channels of each conv layer")
    conv_kernel: list[int] | None = Field(None, min_length=1)
    conv_stride: list[int] | None = Field(None, min_length=1)
    conv_bias: bool | None = None
    conv_pos_kernel: int | None = Field(None, gt=0, description="kernel of the convolutional position embedding")
    conv_pos_groups: int | None = Field(None, gt=0)


class StableLayerNormShape(HFAudioShape):
    """The shape of models with both layouts (wav2vec 2.0, HuBERT, WavLM): base (group-norm conv stack,
    post-LN transformer) or large (layer-norm conv stack, pre-LN transformer)."""

    upstream_names = {**HFAudioShape.upstream_names, "layer_norm_first": "do_stable_layer_norm"}
    feat_extract_norm: Literal["group", "layer"] | None = None
    layer_norm_first: bool | None = Field(None, description="pre-LN transformer (the large releases)")


class HFAudioEncoderConfig(BaseModel):
    """A transformers wav2vec 2.0-family encoder: a checkpoint folder, or random init from ``size`` + ``shape``.

    Subclasses add ``type: Literal[<name>] = <name>`` and set the class variables ``model_class``
    (``"module:Class"`` of a transformers ``PreTrainedModel``) and, optionally, ``presets`` (size
    name -> transformers config fields; ``size: None`` is the config class's defaults) and a
    ``shape`` of their own :class:`HFAudioShape` subclass.
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
    shape: HFAudioShape | None = Field(None, description="random init: fields over the preset")
    layer: MixedLayer = Field(
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
    dtype: DType = Field("auto", description="weights dtype; auto = bf16 with CUDA, else fp32")

    @model_validator(mode="after")
    def _check_shape_source(self) -> HFAudioEncoderConfig:
        name = str(config_type_literal(type(self)))
        refuse_shape_with_path(name, None if self.path is None else str(self.path), size=self.size, shape=self.shape)
        if self.size is not None and self.size not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ValueError(f"{name}: unknown size {self.size!r}; presets: {known}")
        layers = self.random_init_fields().get("num_hidden_layers")
        if self.path is None and isinstance(self.layer, int) and layers is not None:
            layer_index(self.layer, int(layers))
        return self

    def random_init_fields(self) -> dict[str, Any]:
        """The transformers config fields of a random-init model: the preset, then ``shape``."""
        preset = self.presets.get(self.size, {}) if self.size is not None else {}
        return {**preset, **(self.shape.upstream() if self.shape is not None else {})}


def hf_audio_encoder(config: type[HFAudioEncoderConfig], *, api: str, description: str = "") -> ComponentSpec:
    """The record of an encoder whose config subclasses :class:`HFAudioEncoderConfig`."""
    name = config_type_literal(config)
    return ComponentSpec(name=str(name), config=config, factory=FACTORY, api=api, description=description)
