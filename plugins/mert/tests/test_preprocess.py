"""The preprocessor: the shared audio checks, resampling, the receptive-field floor, normalisation."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from slam_plugin_mert.preprocess import MERTPreprocessor

from slam_core.audio import AudioError, RawAudio

MERT = MERTPreprocessor(sample_rate=24000, min_samples=400)


def tone(seconds: float, rate: int, freq: float = 440.0) -> torch.Tensor:
    t = torch.arange(int(seconds * rate)) / rate
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def test_waveform_at_the_model_rate_passes_through():
    waveform = tone(0.1, 24000)
    out = MERT(RawAudio(waveform, 24000))
    assert out.dtype == torch.float32
    assert torch.equal(out, waveform)
    assert torch.equal(MERT(waveform), waveform), "a bare waveform is taken to be at the model's rate"


def test_other_rates_are_resampled_to_24_khz():
    out = MERT(RawAudio(tone(0.5, 16000), 16000))
    assert out.shape[0] == 12000
    reference = tone(0.5, 24000)
    middle = slice(1000, 11000)  # away from the resampling filter's edge effects
    torch.testing.assert_close(out[middle], reference[middle], atol=5e-3, rtol=0)


def test_other_rates_are_refused_without_resample():
    strict = MERTPreprocessor(sample_rate=24000, min_samples=400, resample=False)
    with pytest.raises(AudioError, match=r"16000 Hz but the encoder expects 24000 Hz.*resample: true"):
        strict(RawAudio(tone(0.5, 16000), 16000))


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (torch.zeros(0), "empty audio"),
        (torch.tensor([0.1, float("nan")] * 300), "audio contains NaN or infinite"),
        (torch.zeros(2, 1000), r"expected mono audio"),
    ],
)
def test_bad_audio_is_named(waveform, message):
    with pytest.raises(AudioError, match=f"mert input: {message}"):
        MERT(RawAudio(waveform, 24000))


def test_clips_shorter_than_the_receptive_field_are_refused():
    assert MERT(torch.zeros(400)).shape == (400,)
    with pytest.raises(AudioError, match=r"399 samples at 24000 Hz is shorter than MERT's receptive field of 400"):
        MERT(torch.zeros(399))
    with pytest.raises(AudioError, match="240 samples at 24000 Hz"):  # checked after resampling 80 samples at 8 kHz
        MERT(RawAudio(torch.ones(80), 8000))


def test_max_seconds():
    short = MERTPreprocessor(sample_rate=24000, min_samples=400, max_seconds=1.0)
    assert short(tone(1.0, 24000)).shape == (24000,)
    with pytest.raises(AudioError, match=r"exceeds the 1 s"):
        short(tone(1.5, 24000))


def test_normalisation_matches_the_hf_feature_extractor():
    from transformers import Wav2Vec2FeatureExtractor

    waveform = 0.3 * tone(0.2, 24000) + 0.1
    ours = MERTPreprocessor(sample_rate=24000, min_samples=400, normalize=True)(waveform)
    theirs = Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm([waveform.numpy()], None)[0]
    torch.testing.assert_close(ours, torch.from_numpy(np.asarray(theirs, dtype=np.float32)), atol=1e-5, rtol=1e-5)
    assert abs(float(ours.mean())) < 1e-5 and abs(float(ours.std(unbiased=False)) - 1) < 1e-4


def test_pickles_small_and_equal():
    preprocess = MERTPreprocessor(sample_rate=24000, min_samples=400, max_seconds=30.0, normalize=True)
    payload = pickle.dumps(preprocess)
    assert len(payload) < 500
    assert pickle.loads(payload) == preprocess
