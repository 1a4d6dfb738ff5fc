"""av-hubert: the SLAM encoder conformance kit in each modality, random-init and checkpoint-loaded."""

from __future__ import annotations

import numpy as np
import torch
from avhubert_testing import FIXTURES, TINY

from slam_core.audio import RawAudio
from slam_core.testing import EncoderConformance
from slam_core.video import RawAudioVisual, RawVideo


def lip_video(frames: int, generator: torch.Generator) -> RawVideo:
    """uint8 frames [T, 96, 96] at 25 fps, as av_hubert's preparation stores mouth crops."""
    pixels = torch.randint(0, 256, (frames, 96, 96), generator=generator, dtype=torch.uint8)
    return RawVideo(np.asarray(pixels), 25.0)


class _VideoConformance(EncoderConformance):
    component_name = "av-hubert"
    #: Video frames per example clip: a few, fewer than the stem's 5-frame kernel, and a single frame.
    raw_sizes = (6, 3, 1)

    def raw_sample(self, encoder, size, generator):
        return lip_video(size, generator)


class TestVideoConformance(_VideoConformance):
    config = {"shape": TINY, "modality": "video"}


class TestAudioConformance(EncoderConformance):
    component_name = "av-hubert"
    config = {"shape": TINY, "modality": "audio"}
    #: 16 kHz samples: 15, 5 and 1 frames at 25 Hz (400 samples: one filterbank window).
    raw_sizes = (9600, 3200, 400)


class TestAudioVisualConformance(_VideoConformance):
    """Dict features; also what no release uses: post-LN layers, a ReLU ResNet, features added (not concatenated)."""

    shape = {**TINY, "layer_norm_first": False, "resnet_relu_type": "relu", "modality_fuse": "add"}
    config = {"shape": shape, "modality": "audio-visual"}

    def raw_sample(self, encoder, size, generator):
        audio = 0.1 * torch.randn(size * 640 + 37, generator=generator)  # a little longer than the video
        return RawAudioVisual(lip_video(size, generator), RawAudio(audio, 16000))


class TestCheckpointMiddleLayerConformance(_VideoConformance):
    """The fine-tuned fixture checkpoint (fp16 weights), lip reading from the output of layer 1 of 2."""

    config = {"path": str(FIXTURES / "avhubert-tiny-s2s.pt"), "modality": "video", "layer": 1}
