"""Helpers shared by the av-hubert plugin's tests (on sys.path through conftest.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from slam_core import features as feature_ops
from slam_core.audio import RawAudio
from slam_core.video import RawAudioVisual, RawVideo

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLIPS = 3
#: Modality -> the key of its outputs in reference.safetensors.
OUTPUT_KEYS = {"video": "video", "audio": "audio", "audio-visual": "av"}
#: A tiny random-init ``shape``: 2 layers of width 32, a narrow ResNet.
TINY = {
    "num_layers": 2,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_heads": 4,
    "conv_pos_kernel": 8,
    "conv_pos_groups": 4,
    "resnet_widths": [4, 4, 8, 8],
}


def raw_clips(reference: dict[str, torch.Tensor], modality: str) -> list:
    """The fixture clips as the data pipeline hands them to an encoder of ``modality``."""
    samples = []
    for i in range(CLIPS):
        video = RawVideo(reference[f"frames.{i}"].numpy(), 25.0)
        audio = RawAudio(reference[f"audio.{i}"].float() / 2**15, 16000)
        samples.append({"video": video, "audio": audio, "audio-visual": RawAudioVisual(video, audio)}[modality])
    return samples


def run_batch(encoder, raws: list, preprocess=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Preprocess ``raws``, pad them as the data pipeline does and run ``encoder`` without gradients."""
    preprocess = preprocess or encoder.preprocessor()
    padded, lengths = feature_ops.pad([feature_ops.as_features(preprocess(raw)) for raw in raws])
    with torch.no_grad():
        return encoder(padded, lengths)
