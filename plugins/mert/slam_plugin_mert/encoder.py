"""The MERT encoder component: waveform → conv front end → HuBERT transformer → one layer (or a mix)."""

from __future__ import annotations

import torch

from slam_core.components import Encoder
from slam_core.configs import layer_index, torch_dtype
from slam_plugin_mert.checkpoint import MERTSource, build_model, read_source
from slam_plugin_mert.frontend import extract_features
from slam_plugin_mert.lengths import conv_output_lengths, receptive_field, total_stride
from slam_plugin_mert.mixing import LayerSelect, WeightedLayerSum
from slam_plugin_mert.plugin import MERTEncoderConfig
from slam_plugin_mert.preprocess import MERTPreprocessor
from slam_plugin_mert.transformer import hidden_states, truncate


class MERTEncoder(Encoder):
    """MERT-v1 (95M / 330M) on raw waveforms at the checkpoint's rate (24 kHz → 75 Hz frames).

    ``layer: k`` keeps the transformer's first ``k`` layers only and returns state ``k`` (null: all);
    ``layer: weighted`` returns a softmax-weighted sum of all states with learned weights
    (``mix.weights``). Those weights are the encoder's trainable head: they train even with
    ``train.freeze_encoder: true``, while the backbone stays frozen under no_grad.
    """

    modality = "audio"

    def __init__(self, config: MERTEncoderConfig):
        super().__init__()
        self.config = config
        if config.path is not None:
            source = read_source(config.path)
        else:
            source = MERTSource(config.preset(), f"MERT preset {config.size or '95m'}")
        self.model = build_model(source, torch_dtype(config.dtype))
        hubert = self.model.config
        self.kernels, self.strides = tuple(hubert.conv_kernel), tuple(hubert.conv_stride)
        self.sample_rate = source.sample_rate
        self.frame_rate = self.sample_rate / total_stride(self.strides)
        self.output_dim = int(hubert.hidden_size)
        self.min_samples = receptive_field(self.kernels, self.strides)
        self.normalize = source.do_normalize if config.normalize is None else config.normalize
        num_layers = int(hubert.num_hidden_layers)
        if config.layer == "weighted":
            self.mix = WeightedLayerSum(num_layers + 1)
        else:
            truncate(self.model.encoder, layer_index(config.layer, num_layers))
            self.mix = LayerSelect()

    def preprocessor(self) -> MERTPreprocessor:
        return MERTPreprocessor(
            sample_rate=self.sample_rate,
            min_samples=self.min_samples,
            resample=self.config.resample,
            max_seconds=self.config.max_seconds,
            normalize=self.normalize,
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths, self.kernels, self.strides)

    def hidden_states(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """All hidden states the (possibly truncated) model computes, each ``[B, T_out, D]``, and the lengths."""
        waveform = self._check(features, lengths)
        out_lengths = self.output_lengths(lengths)
        frames = int(out_lengths.max())
        conv = extract_features(self.model.feature_extractor, waveform, lengths)[:, :, :frames]
        projected = self.model.feature_projection(conv.transpose(1, 2))
        valid = torch.arange(frames, device=lengths.device)[None, :] < out_lengths[:, None]
        return hidden_states(self.model.encoder, projected, valid), out_lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(*self.backbone(features, lengths))

    def backbone(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The frozen part: every hidden state the model computes."""
        return self.hidden_states(features, lengths)

    def head(self, states: list[torch.Tensor], lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The chosen layer, or the learned mix of all layers, with padded frames zeroed."""
        valid = torch.arange(states[0].shape[1], device=lengths.device)[None, :] < lengths[:, None]
        return self.mix(states) * valid[..., None].to(states[0].dtype), lengths

    def head_modules(self) -> list[torch.nn.Module]:
        """The layer weights of ``layer: weighted`` train even when the encoder is frozen."""
        return [self.mix] if isinstance(self.mix, WeightedLayerSum) else []

    def _check(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``features [B, N]`` (or ``[B, N, 1]``) as a waveform in the model's dtype; refuses bad lengths."""
        if features.ndim == 3 and features.shape[-1] == 1:
            features = features[..., 0]
        if features.ndim != 2:
            raise ValueError(f"mert: expected waveforms [batch, samples], got shape {tuple(features.shape)}")
        if lengths.numel() != features.shape[0] or not lengths.numel():
            raise ValueError(f"mert: {lengths.numel()} lengths for a batch of {features.shape[0]} waveforms")
        if int(lengths.max()) > features.shape[1]:
            raise ValueError(f"mert: a length of {int(lengths.max())} exceeds the {features.shape[1]} samples given")
        short = (lengths < self.min_samples).nonzero().flatten().tolist()
        if short:
            raise ValueError(
                f"mert: clip(s) {short} have fewer than {self.min_samples} samples (the conv receptive field) "
                "and give no frame; the preprocessor refuses such clips"
            )
        return features.to(self.model.feature_projection.projection.weight.dtype)
