"""av-hubert preprocessing: upstream's features, frame arithmetic, crop/flip augmentation and bad input."""

from __future__ import annotations

import math
import pickle
import random

import cv2
import numpy as np
import pytest
import torch
from avhubert_testing import CLIPS, raw_clips
from hypothesis import given, settings
from hypothesis import strategies as st
from slam_plugin_av_hubert.fbank import align_to, fbank_frames, logfbank, normalize_frames, stack_frames
from slam_plugin_av_hubert.preprocess import AudioVisualFeatures, Filterbanks, LipCrops

from slam_core.audio import AudioError, RawAudio
from slam_core.video import RawAudioVisual, RawVideo, VideoError

LIPS = LipCrops()


# ----------------------------------------------------------------------------- upstream's features


@pytest.mark.parametrize("name", ["0", "short"])
def test_logfbank_equals_python_speech_features(name, reference):
    """python_speech_features 0.6 ``logfbank(int16 samples, samplerate=16000)``, as av_hubert's dataset calls it."""
    samples = reference["audio.0"] if name == "0" else reference["audio.0"][:300]
    torch.testing.assert_close(logfbank(samples.double()), reference[f"logfbank.{name}"], atol=1e-4, rtol=1e-6)


def test_audio_features_equal_upstream_dataset(reference):
    """Stacked, aligned to the video (AV) or not (audio only), normalised per frame: AVHubertDataset.__getitem__."""
    audio_only, both = Filterbanks(), AudioVisualFeatures(LIPS, Filterbanks())
    for i, (audio, pair) in enumerate(
        zip(raw_clips(reference, "audio"), raw_clips(reference, "audio-visual"), strict=True)
    ):
        torch.testing.assert_close(audio_only(audio), reference[f"features.audio.{i}"], atol=1e-5, rtol=1e-5)
        features = both(pair)
        torch.testing.assert_close(features["audio"], reference[f"features.av.audio.{i}"], atol=1e-5, rtol=1e-5)
        assert features["video"].shape[0] == features["audio"].shape[0] == reference[f"frames.{i}"].shape[0]


def test_lip_crops_equal_upstream_transform(reference):
    """Normalize(0, 255) -> CenterCrop(88) -> Normalize(0.421, 0.165) of av_hubert's utils, on 96x96 crops."""
    crops = LIPS(raw_clips(reference, "video")[CLIPS - 1])
    assert crops.shape == (2, 88, 88) and crops.dtype == torch.float32
    torch.testing.assert_close(crops[:1], reference[f"features.video.{CLIPS - 1}"], atol=0, rtol=0)


# ----------------------------------------------------------------------------- frame arithmetic


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=4000))
def test_filterbank_frames_follow_python_speech_features(samples):
    expected = 1 if samples <= 400 else 1 + math.ceil((samples - 400) / 160)
    assert fbank_frames(samples) == expected == logfbank(torch.ones(samples)).shape[0]
    assert Filterbanks()(torch.full((samples,), 0.01)).shape == (math.ceil(expected / 4), 104)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=5)
)
def test_stacking_concatenates_consecutive_frames_and_zero_pads_the_last(frames, width, order):
    features = torch.arange(frames * width, dtype=torch.float32).reshape(frames, width) + 1
    stacked = stack_frames(features, order)
    assert stacked.shape == (math.ceil(frames / order), order * width)
    unstacked = stacked.reshape(-1, width)
    torch.testing.assert_close(unstacked[:frames], features)
    assert not unstacked[frames:].any()


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=20))
def test_audio_is_trimmed_or_zero_padded_to_the_video(audio_frames, video_frames):
    features = torch.randn(audio_frames, 104) + 3
    aligned = align_to(features, video_frames)
    kept = min(audio_frames, video_frames)
    assert aligned.shape == (video_frames, 104)
    torch.testing.assert_close(aligned[:kept], features[:kept])
    normalised = normalize_frames(aligned)
    assert not normalised[kept:].any(), "padded frames stay zero after the per-frame normalisation"
    torch.testing.assert_close(normalised[:kept].mean(-1), torch.zeros(kept), atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- augmentation


def test_train_crops_are_random_positions_and_flips_of_the_clip(reference):
    clip = raw_clips(reference, "video")[0]
    frames = (clip.frames.astype(np.float64) / 255.0 - 0.421) / 0.165
    candidates = {}
    for top in range(9):
        for left in range(9):
            crop = torch.from_numpy(frames[:, top : top + 88, left : left + 88].astype(np.float32))
            candidates[(top, left, False)], candidates[(top, left, True)] = crop, crop.flip(-1)
    train = LipCrops(train=True)
    random.seed(7)
    drawn = []
    for _ in range(40):
        crops = train(clip)
        drawn.append(next(key for key, candidate in candidates.items() if torch.equal(candidate, crops)))
    assert len({key[:2] for key in drawn}) > 10, "crop positions do not vary"
    assert 5 < sum(key[2] for key in drawn) < 35, "flips are not drawn with probability 0.5"
    random.seed(7)
    assert torch.equal(train(clip), candidates[drawn[0]]), "not reproducible from random.seed"
    assert torch.equal(LIPS(clip), candidates[(4, 4, False)]) and torch.equal(LIPS(clip), LIPS(clip))


def test_flip_is_opencvs_horizontal_flip(reference, monkeypatch):
    """Upstream flips each frame with cv2.flip(frame, 1)."""
    clip = raw_clips(reference, "video")[1]
    monkeypatch.setattr(random, "random", lambda: 0.0)  # always flip
    monkeypatch.setattr(random, "randint", lambda low, high: 4)  # centre position
    flipped = np.stack([cv2.flip(frame, 1) for frame in clip.frames])
    torch.testing.assert_close(LipCrops(train=True)(clip), LIPS(RawVideo(flipped, 25.0)), atol=0, rtol=0)


def test_audio_visual_train_preprocessing_augments_the_video_only(reference):
    pair = raw_clips(reference, "audio-visual")[0]
    train = AudioVisualFeatures(LipCrops(train=True), Filterbanks())
    evaluation = AudioVisualFeatures(LIPS, Filterbanks())
    random.seed(3)
    outputs = [train(pair) for _ in range(6)]
    assert any(not torch.equal(o["video"], outputs[0]["video"]) for o in outputs)
    for output in outputs:
        torch.testing.assert_close(output["audio"], evaluation(pair)["audio"], atol=0, rtol=0)
    restored = pickle.loads(pickle.dumps(train))
    random.seed(3)
    torch.testing.assert_close(restored(pair)["video"], outputs[0]["video"], atol=0, rtol=0)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("frames", "fps", "message"),
    [
        (np.zeros((4, 80, 96), np.uint8), 25.0, r"frames of 80x96 pixels are smaller than the 88x88 lip crop"),
        (np.zeros((0, 96, 96), np.uint8), 25.0, r"the video has no frames"),
        (np.zeros((4, 96, 96), np.uint8), 30.0, r"30 frames per second but the encoder expects 25; re-encode"),
        (np.zeros((4, 96), np.uint8), 25.0, r"expected grayscale frames \[T, H, W\], got shape \(4, 96\)"),
    ],
)
def test_unusable_video_is_a_video_error(frames, fps, message):
    with pytest.raises(VideoError, match=message):
        LIPS(RawVideo(frames, fps))


def test_audio_visual_samples_need_both_streams(reference):
    video, audio = raw_clips(reference, "video")[0], raw_clips(reference, "audio")[0]
    both = AudioVisualFeatures(LIPS, Filterbanks())
    with pytest.raises(AudioError, match=r"without audio .* use modality: video for lip reading"):
        both(RawAudioVisual(video, None))
    with pytest.raises(VideoError, match=r"without video; use modality: audio"):
        both(RawAudioVisual(None, audio))
    with pytest.raises(VideoError, match=r"takes RawAudioVisual\(video, audio\), got RawVideo"):
        both(video)
    with pytest.raises(AudioError, match=r"sample rate 8000 Hz but the encoder expects 16000 Hz"):
        Filterbanks(resample=False)(RawAudio(torch.zeros(800), 8000))
