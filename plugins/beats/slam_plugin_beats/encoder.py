"""The BEATs encoder: fbank → 16×16 patch embedding → layer norm → projection → transformer.

Output frames are the patch tokens in the order BEATs produces them: time-major, one token per
16-bin frequency band (8 bands), so every 16 fbank frames (160 ms) give 8 consecutive frames.
"""

from __future__ import annotations

import torch
from torch import nn

from slam_core.components import Encoder
from slam_core.configs import torch_dtype
from slam_plugin_beats.backbone import TransformerEncoder
from slam_plugin_beats.checkpoint import load_checkpoint_into, read_checkpoint
from slam_plugin_beats.features import (
    HOP_SAMPLES,
    NUM_MEL_BINS,
    SAMPLE_RATE,
    BeatsFbank,
    output_lengths,
    tokens_per_step,
)
from slam_plugin_beats.plugin import BeatsConfig


class BeatsEncoder(Encoder):
    """BEATs with the parameter names of Microsoft's checkpoints; exact lengths, no padding leak.

    ``forward(fbank [B, T, 128], lengths [B])`` returns ``(hidden [B, N, D], N_i)`` with
    ``N_i = (T_i // 16) * 8`` for 16×16 patches: the frames of a partial last patch are dropped, as upstream.
    """

    modality = "audio"

    def __init__(self, config: BeatsConfig):
        super().__init__()
        checkpoint = read_checkpoint(config.path) if config.path else None
        shape = checkpoint.shape if checkpoint is not None else config.architecture()
        self.config, self.shape = config, shape
        self.patch_size = shape.input_patch_size
        self.sample_rate = SAMPLE_RATE
        self.output_dim = shape.encoder_embed_dim
        self.frame_rate = tokens_per_step(self.patch_size) * SAMPLE_RATE / (HOP_SAMPLES * self.patch_size)
        self.patch_embedding = nn.Conv2d(
            1, shape.embed_dim, self.patch_size, stride=self.patch_size, bias=shape.conv_bias
        )
        self.layer_norm = nn.LayerNorm(shape.embed_dim)
        self.post_extract_proj = (
            nn.Linear(shape.embed_dim, shape.encoder_embed_dim) if shape.embed_dim != shape.encoder_embed_dim else None
        )
        self.encoder = TransformerEncoder(shape)
        if checkpoint is not None:
            load_checkpoint_into(self, checkpoint)
        self.to(torch_dtype(config.dtype))

    def preprocessor(self) -> BeatsFbank:
        return BeatsFbank(
            self.patch_size,
            resample=self.config.resample,
            max_seconds=self.config.max_seconds,
            mean=self.config.fbank_mean,
            std=self.config.fbank_std,
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return output_lengths(lengths, self.patch_size)

    def _check(self, features: torch.Tensor, lengths: torch.Tensor) -> None:
        if features.ndim != 3 or features.shape[-1] != NUM_MEL_BINS:
            raise ValueError(
                f"beats expects fbank features [batch, frames, {NUM_MEL_BINS}] from its preprocessor, "
                f"got shape {tuple(features.shape)}"
            )
        if lengths.shape != features.shape[:1]:
            raise ValueError(f"beats: lengths has shape {tuple(lengths.shape)}, expected ({features.shape[0]},)")
        short = (lengths < self.patch_size).nonzero().flatten().tolist()
        if short:
            raise ValueError(
                f"beats: batch item(s) {short} have {lengths[short].tolist()} fbank frames, fewer than one "
                f"{self.patch_size}-frame patch; the preprocessor refuses such clips, pad or drop them"
            )
        if int(lengths.max()) > features.shape[1]:
            raise ValueError(f"beats: a length exceeds the {features.shape[1]} frames of the features")

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(features, lengths)
        out_lengths = self.output_lengths(lengths)
        steps = int(lengths.max()) // self.patch_size
        fbank = features[:, : steps * self.patch_size].to(self.patch_embedding.weight.dtype)
        x = self.patch_embedding(fbank.unsqueeze(1))  # [B, E, steps, bands]
        x = self.layer_norm(x.flatten(2).transpose(1, 2))  # time-major: token t * bands + f
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < out_lengths.to(x.device)[:, None]
        x = self.encoder(x, valid)
        return x * valid[..., None], out_lengths
