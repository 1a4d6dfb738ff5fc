"""The AV-HuBERT encoder component: lip crops and/or filterbanks -> fused features -> transformer, 25 Hz in and out.

Per frame, the video goes through the ResNet front end and ``feature_extractor_video.proj``, the audio
through ``feature_extractor_audio.proj``; the two are concatenated as ``[audio, video]`` (a missing
modality is zeros, as upstream's ``extract_finetune``), layer-normed, projected back to the model width
(``post_extract_proj``) and encoded. No stride anywhere: ``output_lengths(n) == n``.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from slam_core.components import Encoder
from slam_core.configs import layer_index, torch_dtype
from slam_plugin_av_hubert.checkpoint import AVHubertCheckpoint, load_into, read_checkpoint, shape_from_config
from slam_plugin_av_hubert.plugin import AVHubertArchitecture, AVHubertConfig
from slam_plugin_av_hubert.preprocess import AudioVisualFeatures, Filterbanks, LipCrops
from slam_plugin_av_hubert.presets import AUDIO_RATE, FRAME_RATE, VIDEO_FPS
from slam_plugin_av_hubert.resnet import VisualFrontend
from slam_plugin_av_hubert.transformer import TransformerEncoder

log = logging.getLogger(__name__)


class VideoFeatureExtractor(nn.Module):
    """``feature_extractor_video``: the ResNet front end (``resnet``) and a Linear to the model width (``proj``)."""

    def __init__(self, shape: AVHubertArchitecture):
        super().__init__()
        self.resnet = VisualFrontend(shape.resnet_widths, shape.resnet_relu_type)
        self.proj = nn.Linear(self.resnet.output_dim, shape.encoder_embed_dim)

    def forward(self, frames: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.proj(self.resnet(frames, valid))


class AudioFeatureExtractor(nn.Module):
    """``feature_extractor_audio``: a Linear from the stacked filterbanks to the model width (``proj``)."""

    def __init__(self, shape: AVHubertArchitecture):
        super().__init__()
        self.proj = nn.Linear(shape.audio_feat_dim, shape.encoder_embed_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj(features)


def _resolve_shape(config: AVHubertConfig, checkpoint: AVHubertCheckpoint | None) -> AVHubertArchitecture:
    if checkpoint is None or checkpoint.model_cfg is None:
        shape = config.architecture()
        if checkpoint is not None and checkpoint.resnet_widths is not None:
            shape = shape.model_copy(update={"resnet_widths": checkpoint.resnet_widths})
        if checkpoint is not None and checkpoint.path.suffix != ".safetensors":
            log.warning("%s has no model config; assuming the %s preset", checkpoint.path, config.size or "large")
        return shape
    return shape_from_config(checkpoint)


class AVHubertEncoder(Encoder):
    """AV-HuBERT with the parameter names of the released fairseq models; exact lengths, no padding leak.

    ``forward(features, lengths)``: ``features`` is ``[B, T, H, W]`` lip crops (``modality: video``),
    ``[B, T, 104]`` filterbanks (``audio``) or ``{"video": ..., "audio": ...}`` (``audio-visual``);
    returns ``(hidden [B, T, D], lengths)``, zero past each length.
    """

    def __init__(self, config: AVHubertConfig):
        super().__init__()
        checkpoint = read_checkpoint(config.path) if config.path else None
        shape = _resolve_shape(config, checkpoint)
        self.config, self.shape = config, shape
        self.depth = layer_index(config.layer, shape.encoder_layers)
        self.modality = config.modality
        self.sample_rate = AUDIO_RATE if config.modality == "audio" else VIDEO_FPS
        self.frame_rate = FRAME_RATE
        self.output_dim = shape.encoder_embed_dim
        if config.modality != "audio":
            self.feature_extractor_video = VideoFeatureExtractor(shape)
        if config.modality != "video":
            self.feature_extractor_audio = AudioFeatureExtractor(shape)
        fused = shape.encoder_embed_dim * (2 if shape.modality_fuse == "concat" else 1)
        self.layer_norm = nn.LayerNorm(fused)
        self.post_extract_proj = nn.Linear(fused, shape.encoder_embed_dim) if fused != shape.encoder_embed_dim else None
        self.encoder = TransformerEncoder(
            shape,
            self.depth,
            final_norm=self.depth == shape.encoder_layers,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            activation_dropout=config.activation_dropout,
        )
        self.load_report: dict[str, tuple[str, ...]] = {}
        if checkpoint is not None:
            self.load_report = load_into(self, checkpoint, self._unused_prefixes())
        self.to(torch_dtype(config.dtype))

    def _unused_prefixes(self) -> dict[str, tuple[str, ...]]:
        """Checkpoint keys this configuration does not build, by reason."""
        unused = {}
        other = {"video": "feature_extractor_audio.", "audio": "feature_extractor_video."}.get(self.modality)
        if other:
            unused[f"not used with modality: {self.modality}"] = (other,)
        if self.depth < self.shape.encoder_layers:
            layers = tuple(f"encoder.layers.{i}." for i in range(self.depth, self.shape.encoder_layers))
            final = ("encoder.layer_norm.",) if self.shape.layer_norm_first else ()
            unused[f"not used with layer: {self.config.layer}"] = layers + final
        return unused

    # -- preprocessing ---------------------------------------------------------------------------
    def _lip_crops(self, train: bool) -> LipCrops:
        config = self.config
        return LipCrops(config.crop_size, config.image_mean, config.image_std, train=train)

    def _filterbanks(self) -> Filterbanks:
        return Filterbanks(normalize=self.config.normalize_audio, resample=self.config.resample)

    def _preprocessor(self, train: bool):
        if self.modality == "video":
            return self._lip_crops(train)
        if self.modality == "audio":
            return self._filterbanks()
        return AudioVisualFeatures(self._lip_crops(train), self._filterbanks())

    def preprocessor(self):
        """Centre crop (deterministic): lip crops ``[T, 88, 88]``, filterbanks ``[T, 104]``, or both in a dict."""
        return self._preprocessor(train=False)

    def train_preprocessor(self):
        """As :meth:`preprocessor`, with a random crop and a horizontal flip (p = 0.5) of the video."""
        return self._preprocessor(train=True)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths.clone()

    # -- forward ---------------------------------------------------------------------------------
    def _streams(self, features) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(video [B, T, H, W] or None, audio [B, T, F] or None)``, checked against the modality."""
        if self.modality == "audio-visual":
            if not isinstance(features, dict) or set(features) != {"video", "audio"}:
                got = sorted(features) if isinstance(features, dict) else type(features).__name__
                raise ValueError(f"av-hubert (audio-visual) expects features {{'video', 'audio'}}, got {got}")
            video, audio = features["video"], features["audio"]
        elif isinstance(features, dict):
            raise ValueError(f"av-hubert ({self.modality}) expects one tensor of features, got a dict")
        else:
            video, audio = (features, None) if self.modality == "video" else (None, features)
        if video is not None and video.ndim != 4:
            raise ValueError(f"av-hubert expects lip crops [batch, frames, H, W], got shape {tuple(video.shape)}")
        if audio is not None and (audio.ndim != 3 or audio.shape[-1] != self.shape.audio_feat_dim):
            raise ValueError(
                f"av-hubert expects filterbanks [batch, frames, {self.shape.audio_feat_dim}], got {tuple(audio.shape)}"
            )
        if video is not None and audio is not None and video.shape[:2] != audio.shape[:2]:
            raise ValueError(
                f"av-hubert: video {tuple(video.shape[:2])} and audio {tuple(audio.shape[:2])} "
                "differ in batch or frames"
            )
        return video, audio

    def _valid(self, frames: int, lengths: torch.Tensor, batch: int) -> torch.Tensor:
        if lengths.shape != (batch,):
            raise ValueError(f"av-hubert: lengths has shape {tuple(lengths.shape)}, expected ({batch},)")
        if batch and (int(lengths.min()) < 1 or int(lengths.max()) > frames):
            raise ValueError(f"av-hubert: lengths {lengths.tolist()} must lie in 1..{frames} (the frames given)")
        return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]

    def _drop_modality(self, video: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training only: with probability ``modality_dropout`` zero one modality for the whole batch, the audio
        with probability ``audio_dropout`` else the video (upstream's draws, from torch's generator)."""
        if not (self.training and self.config.modality_dropout):
            return video, audio
        drop, which = torch.rand(2).tolist()
        if drop < self.config.modality_dropout:
            if which < self.config.audio_dropout:
                audio = torch.zeros_like(audio)
            else:
                video = torch.zeros_like(video)
        return video, audio

    def forward(self, features, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        video, audio = self._streams(features)
        reference = video if video is not None else audio
        valid = self._valid(reference.shape[1], lengths.to(reference.device), reference.shape[0])
        dtype = self.layer_norm.weight.dtype
        video_out = None if video is None else self.feature_extractor_video(video.to(dtype), valid)
        audio_out = None if audio is None else self.feature_extractor_audio(audio.to(dtype))
        if video_out is None:
            video_out = torch.zeros_like(audio_out)
        if audio_out is None:
            audio_out = torch.zeros_like(video_out)
        video_out, audio_out = self._drop_modality(video_out, audio_out)
        if self.shape.modality_fuse == "concat":
            fused = torch.cat([audio_out, video_out], dim=-1)
        else:
            fused = audio_out + video_out
        x = self.layer_norm(fused)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        x = self.encoder(x, valid)
        return x * valid[..., None].to(x.dtype), self.output_lengths(lengths)
