"""Registers ``wav2vec2``, ``hubert``, ``wavlm`` and ``data2vec-audio`` with SLAM (imports no torch).

Each is :class:`slam_core.hf_audio_encoder.HFAudioEncoder` over its transformers model class; the
configs differ only in that class, their presets and the shape fields their transformers config has.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from slam_core.hf_audio import HFAudioEncoderConfig, HFAudioShape, StableLayerNormShape, hf_audio_encoder
from slam_core.hookspecs import hookimpl
from slam_plugin_hf_audio.presets import PRESETS

Size = Literal["base", "large"] | None
SIZE = Field(None, description="preset of a random-init model (see the plugin's README); null = base")
SHAPE = Field(None, description="random init: fields over the preset")


class Wav2Vec2Shape(StableLayerNormShape):
    component = "wav2vec2"


class Wav2Vec2EncoderConfig(HFAudioEncoderConfig):
    """wav2vec 2.0 (transformers ``Wav2Vec2Model``): facebook/wav2vec2-base, -large-lv60, XLS-R, ..."""

    type: Literal["wav2vec2"] = "wav2vec2"
    model_class: ClassVar[str] = "transformers:Wav2Vec2Model"
    presets: ClassVar[dict] = PRESETS["wav2vec2"]
    size: Size = SIZE
    shape: Wav2Vec2Shape | None = SHAPE


class HubertShape(StableLayerNormShape):
    component = "hubert"


class HubertEncoderConfig(HFAudioEncoderConfig):
    """HuBERT (transformers ``HubertModel``): facebook/hubert-base-ls960, -large-ll60k, ..."""

    type: Literal["hubert"] = "hubert"
    model_class: ClassVar[str] = "transformers:HubertModel"
    presets: ClassVar[dict] = PRESETS["hubert"]
    size: Size = SIZE
    shape: HubertShape | None = SHAPE


class WavLMShape(StableLayerNormShape):
    component = "wavlm"
    num_buckets: int | None = Field(None, gt=0, description="relative position buckets")
    max_bucket_distance: int | None = Field(None, gt=0)


class WavLMEncoderConfig(HFAudioEncoderConfig):
    """WavLM (transformers ``WavLMModel``): microsoft/wavlm-base, -base-plus, -large."""

    type: Literal["wavlm"] = "wavlm"
    model_class: ClassVar[str] = "transformers:WavLMModel"
    presets: ClassVar[dict] = PRESETS["wavlm"]
    size: Size = SIZE
    shape: WavLMShape | None = SHAPE


class Data2VecAudioShape(HFAudioShape):
    """data2vec-audio's position embedding is a stack of ``conv_pos_layers`` convs of kernel ``conv_pos_kernel``;
    it has one layout (layer-norm conv stack, post-LN transformer)."""

    component = "data2vec-audio"
    upstream_names = {
        **HFAudioShape.upstream_names,
        "conv_pos_kernel": "conv_pos_kernel_size",
        "conv_pos_layers": "num_conv_pos_embeddings",
    }
    conv_pos_layers: int | None = Field(None, gt=0, description="number of positional conv layers")


class Data2VecAudioEncoderConfig(HFAudioEncoderConfig):
    """data2vec-audio (transformers ``Data2VecAudioModel``): facebook/data2vec-audio-base, -large."""

    type: Literal["data2vec-audio"] = "data2vec-audio"
    model_class: ClassVar[str] = "transformers:Data2VecAudioModel"
    presets: ClassVar[dict] = PRESETS["data2vec-audio"]
    size: Size = SIZE
    shape: Data2VecAudioShape | None = SHAPE


#: The shape class of each type.
SHAPES: dict[str, type[HFAudioShape]] = {
    "wav2vec2": Wav2Vec2Shape,
    "hubert": HubertShape,
    "wavlm": WavLMShape,
    "data2vec-audio": Data2VecAudioShape,
}


@hookimpl
def slam_encoders():
    return [
        hf_audio_encoder(Wav2Vec2EncoderConfig, api="1.0", description="wav2vec 2.0 speech encoder (16 kHz → 50 Hz)"),
        hf_audio_encoder(HubertEncoderConfig, api="1.0", description="HuBERT speech encoder (16 kHz → 50 Hz)"),
        hf_audio_encoder(WavLMEncoderConfig, api="1.0", description="WavLM speech encoder (16 kHz → 50 Hz)"),
        hf_audio_encoder(
            Data2VecAudioEncoderConfig, api="1.0", description="data2vec-audio speech encoder (16 kHz → 50 Hz)"
        ),
    ]
