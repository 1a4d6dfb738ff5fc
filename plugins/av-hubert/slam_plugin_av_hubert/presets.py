"""AV-HuBERT's architectures and fixed input settings (imports no torch).

Values follow av_hubert's ``conf/pretrain/{base,large}_*_iter5.yaml`` (model section) and the
``AVHubertConfig`` / ``AVHubertPretrainingConfig`` defaults in ``avhubert/hubert.py`` and
``avhubert/hubert_pretraining.py``.
"""

from __future__ import annotations

from typing import Any

#: Shared by Base and Large: pre-LN transformer, convolutional position embedding (kernel 128 in 16
#: groups), 26 log-mel bins x 4 stacked frames of audio, concatenated audio/video features, PReLU ResNet.
_COMMON: dict[str, Any] = {
    "layer_norm_first": True,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "audio_feat_dim": 104,
    "modality_fuse": "concat",
    "resnet_relu_type": "prelu",
    "activation_fn": "gelu",
    "resnet_widths": (64, 128, 256, 512),
}

PRESETS: dict[str, dict[str, Any]] = {
    "base": {
        **_COMMON,
        "encoder_layers": 12,
        "encoder_embed_dim": 768,
        "encoder_ffn_embed_dim": 3072,
        "encoder_attention_heads": 12,
    },
    "large": {
        **_COMMON,
        "encoder_layers": 24,
        "encoder_embed_dim": 1024,
        "encoder_ffn_embed_dim": 4096,
        "encoder_attention_heads": 16,
    },
}

#: ``AVHubertConfig`` defaults, which apply to any field a checkpoint's model config leaves out.
#: (``resnet_widths`` is not an upstream field: ResEncoder hard-codes it; checkpoints give it by their tensors.)
UPSTREAM_DEFAULTS: dict[str, Any] = {
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "layer_norm_first": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "audio_feat_dim": -1,
    "modality_fuse": "concat",
    "resnet_relu_type": "prelu",
    "activation_fn": "gelu",
    "resnet_widths": (64, 128, 256, 512),
}

#: Video: 25 fps grayscale mouth crops; the model sees the central (or, in training, a random) 88 x 88.
VIDEO_FPS = 25
IMAGE_MEAN, IMAGE_STD = 0.421, 0.165
CROP_SIZE = 88
#: Audio: 16 kHz waveform -> 100 Hz log filterbank, 4 frames stacked -> 25 Hz, aligned with the video.
AUDIO_RATE = 16000
FRAME_RATE = 25.0
