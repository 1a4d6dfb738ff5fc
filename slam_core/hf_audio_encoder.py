"""An Encoder over any transformers speech model of the wav2vec 2.0 family (see :mod:`slam_core.hf_audio`).

The model's own modules run in its own order, with three things made exact for padded batches:

- lengths: ``output_lengths`` is the conv stack's arithmetic (``floor((n - kernel) / stride) + 1`` per
  layer), and clips shorter than its receptive field are refused by the preprocessor;
- the conv front end: a ``GroupNorm`` after a conv layer (``feat_extract_norm: group``, e.g.
  wav2vec2-base) normalises each channel over the whole time axis, so it takes its statistics over
  each clip's valid frames only; the other conv layers only read valid input at valid outputs;
- the transformer: padded frames are zeroed before the positional convolution (after each layer of
  a multi-layer one, as in data2vec-audio) and masked out of attention through the encoder's own
  ``attention_mask``.

A clip therefore gives the same frames alone as in any batch, and the same frames as the
transformers model run on that clip alone. Hidden states are numbered as transformers'
``hidden_states``: forward pre-/post-hooks on the encoder layers collect them during one run of
the encoder's own ``forward``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from slam_core.audio import WaveformPreprocessor
from slam_core.components import Encoder
from slam_core.configs import layer_index, resolve_dtype
from slam_core.errors import ContractError, SpecError
from slam_core.hf_audio import HFAudioEncoderConfig
from slam_core.hf_audio_loading import build_audio_model
from slam_core.hf_llm import DTYPES
from slam_core.layers import WeightedLayerSum
from slam_core.records import import_object


def conv_output_lengths(lengths: torch.Tensor, kernels: Sequence[int], strides: Sequence[int]) -> torch.Tensor:
    """Frames out of an unpadded conv stack for inputs of ``lengths``: per layer ``floor((n - kernel) / stride) + 1``
    (0 below the receptive field)."""
    for kernel, stride in zip(kernels, strides, strict=True):
        lengths = (torch.div(lengths - kernel, stride, rounding_mode="floor") + 1).clamp(min=0)
    return lengths


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """The shortest input giving one frame (400 samples for wav2vec 2.0's stack)."""
    field, hop = kernels[0], strides[0]
    for kernel, stride in zip(kernels[1:], strides[1:], strict=True):
        field += (kernel - 1) * hop
        hop *= stride
    return field


def masked_group_norm(x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``norm(x[b, :, :lengths[b]])`` for every ``b`` of ``x [B, C, T]`` at once (frames past a length are
    normalised with that clip's statistics and mean nothing)."""
    batch, channels, frames = x.shape
    compute = torch.promote_types(x.dtype, torch.float32)
    grouped = x.to(compute).reshape(batch, norm.num_groups, channels // norm.num_groups, frames)
    valid = (torch.arange(frames, device=x.device)[None, :] < lengths[:, None]).to(compute)[:, None, None, :]
    count = valid.sum(dim=(2, 3), keepdim=True) * (channels // norm.num_groups)
    mean = (grouped * valid).sum(dim=(2, 3), keepdim=True) / count
    variance = ((grouped - mean).square() * valid).sum(dim=(2, 3), keepdim=True) / count
    normed = ((grouped - mean) * torch.rsqrt(variance + norm.eps)).reshape(batch, channels, frames)
    if norm.affine:
        normed = normed * norm.weight.to(compute)[None, :, None] + norm.bias.to(compute)[None, :, None]
    return normed.to(x.dtype)


def extract_features(feature_encoder: nn.Module, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Conv features ``[B, C, T]`` of a padded ``waveform [B, N]`` through transformers' conv layers, each
    ``GroupNorm`` over valid frames only."""
    hidden = waveform[:, None, :]
    for layer in feature_encoder.conv_layers:
        lengths = conv_output_lengths(lengths, layer.conv.kernel_size, layer.conv.stride)
        norm = getattr(layer, "layer_norm", None)
        if isinstance(norm, nn.GroupNorm):
            hidden = layer.activation(masked_group_norm(layer.conv(hidden), lengths, norm))
        else:  # a per-frame LayerNorm or none: nothing crosses clips
            hidden = layer(hidden)
    return hidden


class HFAudioEncoder(Encoder):
    """Raw 16 kHz waveform → conv stack (50 Hz for the usual stride 320) → transformer → one hidden state,
    the final output, or a learned mix of all states (the trainable head of ``layer: weighted``)."""

    modality = "audio"

    def __init__(self, config: HFAudioEncoderConfig):
        super().__init__()
        self.config = config
        model_class = import_object(type(config).model_class)
        built = build_audio_model(config, model_class, DTYPES[resolve_dtype(config.dtype)])
        self.model = built.model
        hf = self.model.config
        self.kernels, self.strides = tuple(hf.conv_kernel), tuple(hf.conv_stride)
        self.sample_rate = built.sample_rate
        self.frame_rate = self.sample_rate / math.prod(self.strides)
        self.output_dim = int(hf.hidden_size)
        self.min_samples = receptive_field(self.kernels, self.strides)
        self.normalize = built.do_normalize if config.normalize is None else config.normalize
        self.mix, self.state = self._choose_states(config.layer)

    def _choose_states(self, layer: int | str | None) -> tuple[WeightedLayerSum | None, int | None]:
        """The head's layer mix and the state index of ``layer``; drops the modules that then go unused:
        the layers after a chosen one, and a pre-LN model's final LayerNorm (only the final output has it)."""
        encoder = self.model.encoder
        layers = len(encoder.layers)
        if layer is not None and getattr(self.model.config, "do_stable_layer_norm", False):
            encoder.layer_norm = nn.Identity()
        if layer == "weighted":
            return WeightedLayerSum(layers + 1), None
        if layer is None:
            return None, None
        try:
            state = layer_index(int(layer), layers)
        except ValueError as exc:
            raise SpecError([f"{self.config.type}: {exc}"]) from None
        encoder.layers = encoder.layers[: max(state, 1)]
        return None, state

    def preprocessor(self) -> WaveformPreprocessor:
        return WaveformPreprocessor(
            sample_rate=self.sample_rate,
            min_samples=self.min_samples,
            resample=self.config.resample,
            max_seconds=self.config.max_seconds,
            normalize=self.normalize,
            name=f"{self.config.type} input",
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths, self.kernels, self.strides)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(*self.backbone(features, lengths))

    def backbone(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The frozen part: the states the head needs (all of them for ``weighted``, else the chosen one)."""
        waveform = self._waveform(features, lengths)
        out_lengths = self.output_lengths(lengths)
        frames = int(out_lengths.max())
        conv = extract_features(self.model.feature_extractor, waveform, lengths)
        if conv.shape[-1] < frames:
            raise ContractError(
                f"{self.config.type}: output_lengths() says {frames} frames but the conv stack produced "
                f"{conv.shape[-1]} for {int(lengths.max())} samples"
            )
        valid = torch.arange(frames, device=lengths.device)[None, :] < out_lengths[:, None]
        projected = self.model.feature_projection(conv[..., :frames].transpose(1, 2))
        projected = projected[0] if isinstance(projected, tuple) else projected
        return self._run_encoder(projected * valid[..., None].to(projected.dtype), valid), out_lengths

    def head(self, states: list[torch.Tensor], lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned mix of the states (``weighted``) or the one state, with padded frames zeroed."""
        hidden = self.mix(states) if self.mix is not None else states[-1]
        valid = torch.arange(hidden.shape[1], device=lengths.device)[None, :] < lengths[:, None]
        return hidden * valid[..., None].to(hidden.dtype), lengths

    def head_modules(self) -> list[nn.Module]:
        """The layer weights of ``layer: weighted`` train even when the encoder is frozen."""
        return [self.mix] if self.mix is not None else []

    def _run_encoder(self, hidden: torch.Tensor, valid: torch.Tensor) -> list[torch.Tensor]:
        encoder, states = self.model.encoder, []
        hooks = [encoder.layers[0].register_forward_pre_hook(lambda module, args: states.append(args[0]))]
        collect = lambda module, args, output: states.append(_first(output))
        hooks += [layer.register_forward_hook(collect) for layer in encoder.layers]
        pos_layers = getattr(getattr(encoder, "pos_conv_embed", None), "layers", None)
        if isinstance(pos_layers, nn.ModuleList) and len(pos_layers) > 1:  # keep the padding zero between layers
            mask = valid[:, None, :].to(hidden.dtype)
            hooks += [layer.register_forward_hook(lambda module, args, out: out * mask) for layer in pos_layers]
        try:
            final = encoder(hidden, attention_mask=valid).last_hidden_state
        finally:
            for hook in hooks:
                hook.remove()
        if self.mix is not None:
            return states
        return [final if self.state is None else states[self.state]]

    def _waveform(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, N]`` (or ``[B, N, 1]``) in the model's dtype; refuses lengths that cannot be right."""
        if features.ndim == 3 and features.shape[-1] == 1:
            features = features[..., 0]
        name = self.config.type
        if features.ndim != 2:
            raise ContractError(f"{name}: expected waveforms [batch, samples], got shape {tuple(features.shape)}")
        if lengths.numel() != features.shape[0] or not lengths.numel():
            raise ContractError(f"{name}: {lengths.numel()} lengths for a batch of {features.shape[0]} waveforms")
        if int(lengths.max()) > features.shape[1] or int(lengths.min()) < self.min_samples:
            raise ContractError(
                f"{name}: lengths {lengths.tolist()} for {features.shape[1]} samples; each must be at least the "
                f"receptive field of {self.min_samples} samples (the preprocessor refuses shorter clips)"
            )
        return features.to(self.model.feature_projection.projection.weight.dtype)


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output
