"""The example encoder: wav2vec 2.0's strided conv stack on the raw waveform, then one Linear."""

from __future__ import annotations

import torch
from torch import nn

from slam_core.audio import WaveformPreprocessor
from slam_core.components import Encoder
from slam_core.errors import ContractError
from slam_plugin_example.plugin import ExampleEncoderConfig

#: wav2vec 2.0's conv stack: 320 samples between frames (50 Hz at 16 kHz), a receptive field of 400 samples.
KERNELS = (10, 3, 3, 3, 3, 2, 2)
STRIDES = (5, 2, 2, 2, 2, 2, 2)
RECEPTIVE_FIELD = 400


class ExampleEncoder(Encoder):
    """16 kHz waveform ``[B, N]`` → 7 unpadded strided convs (GELU) → per-frame LayerNorm → Linear → ``[B, T, D]``.

    A clip of ``n`` samples gives ``floor((n - kernel) / stride) + 1`` frames per conv layer. The
    convolutions are unpadded and every normalisation is per frame, so a valid output frame only
    reads valid samples: a clip gives the same frames alone as in a padded batch.
    """

    modality = "audio"

    def __init__(self, config: ExampleEncoderConfig):
        super().__init__()
        self.config = config
        shape = config.shape
        self.sample_rate, self.output_dim, self.frame_rate = 16000, shape.hidden_size, 16000 / 320
        widths = [1, *[shape.conv_channels] * len(KERNELS)]
        self.convs = nn.ModuleList(
            nn.Conv1d(widths[i], widths[i + 1], KERNELS[i], STRIDES[i]) for i in range(len(KERNELS))
        )
        self.norm = nn.LayerNorm(shape.conv_channels)
        self.proj = nn.Linear(shape.conv_channels, shape.hidden_size)

    def preprocessor(self) -> WaveformPreprocessor:
        # refuses (AudioError) empty, non-finite, multi-channel and too-short clips; resamples other rates
        return WaveformPreprocessor(self.sample_rate, min_samples=RECEPTIVE_FIELD, name="example-encoder input")

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for kernel, stride in zip(KERNELS, STRIDES, strict=True):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return lengths.clamp(min=0)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if features.ndim != 2 or int(lengths.min()) < RECEPTIVE_FIELD:
            raise ContractError(f"example-encoder: needs waveforms [B, N] of 400+ samples, got {tuple(features.shape)}")
        hidden = features[:, None, :]
        for conv in self.convs:
            hidden = nn.functional.gelu(conv(hidden))
        out_lengths = self.output_lengths(lengths)
        hidden = self.proj(self.norm(hidden.transpose(1, 2)[:, : int(out_lengths.max())]))
        valid = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < out_lengths[:, None]
        return hidden * valid[..., None], out_lengths
