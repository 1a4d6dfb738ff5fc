"""Log-mel features: parity with transformers' WhisperFeatureExtractor and OpenAI's, windows, bad audio."""

from __future__ import annotations

import pickle

import pytest
import torch
from slam_plugin_whisper.features import N_FFT, WhisperLogMel
from transformers import WhisperFeatureExtractor

from slam_core.audio import AudioError, RawAudio


def extractor_features(extractor: WhisperFeatureExtractor, waveform: torch.Tensor, **options) -> torch.Tensor:
    """The extractor's log-mel of one clip as ``[frames, n_mels]``."""
    batch = extractor(waveform.numpy(), sampling_rate=16000, return_tensors="pt", **options)
    return batch.input_features[0].T


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("samples", [1601, 4000, 16000 * 7 + 37])
def test_variable_equals_the_extractor_without_padding(n_mels, samples, audio):
    """Variable mode: N // 160 frames, normalised by the clip's own maximum, as padding='do_not_pad' gives."""
    waveform = audio(samples)
    ours = WhisperLogMel(n_mels)(waveform)
    reference = extractor_features(WhisperFeatureExtractor(feature_size=n_mels), waveform, padding="do_not_pad")
    assert ours.shape == (samples // 160, n_mels)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_pad_to_30s_equals_the_extractor_default(n_mels, audio):
    """pad_to_30s: zero-padded to 480 000 samples, 3000 frames, normalised over the padded 30 s."""
    waveform = audio(16000 * 3 + 5)
    ours = WhisperLogMel(n_mels, mode="pad_to_30s")(waveform)
    reference = extractor_features(WhisperFeatureExtractor(feature_size=n_mels), waveform)
    assert ours.shape == (3000, n_mels)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


@pytest.mark.parametrize("remainder", [10, 30, 40, 120])
def test_variable_frames_are_the_first_frames_of_the_padded_ones(remainder, audio):
    """Both modes agree on a clip's T = N // 160 frames except the last one when N mod 160 < 40: its
    STFT window (centred, ±200 samples) then runs past the clip, over reflected samples in variable
    mode and zeros in pad_to_30s; the gap shrinks towards N mod 160 = 39 as the Hann taper reaches the
    edge. (This clip's maximum is the same in both.)"""
    waveform = audio(16000 * 2 + remainder)
    variable = WhisperLogMel(80)(waveform)
    padded = WhisperLogMel(80, mode="pad_to_30s")(waveform)[: variable.shape[0]]
    torch.testing.assert_close(variable[:-1], padded[:-1], atol=1e-4, rtol=0)
    last_differs = bool((variable[-1] - padded[-1]).abs().max() > 1e-4)
    assert last_differs == (remainder < 40)


def test_equals_openai_log_mel_spectrogram(openai_reference):
    """OpenAI's own ``whisper.log_mel_spectrogram`` of the fixture waveform (see fixtures/README.md)."""
    ours = WhisperLogMel(80)(openai_reference["waveform"])
    torch.testing.assert_close(ours, openai_reference["mel"].T, atol=1e-4, rtol=0)


@pytest.mark.parametrize("mode", ["variable", "pad_to_30s"])
def test_long_audio_is_featurised_window_by_window(mode, audio):
    """A clip over one window = each window's features alone, concatenated (1 s windows here)."""
    preprocess = WhisperLogMel(80, window_frames=100, mode=mode, long_audio="chunk")
    waveform = audio(16000 * 2 + 3000)
    pieces = waveform.split(16000)
    expected = torch.cat([WhisperLogMel(80, window_frames=100, mode=mode)(piece) for piece in pieces])
    features = preprocess(waveform)
    torch.testing.assert_close(features, expected, atol=0, rtol=0)
    assert features.shape[0] == (300 if mode == "pad_to_30s" else 2 * 100 + 3000 // 160)


def test_a_tail_shorter_than_one_fft_window_is_zero_padded(audio):
    waveform = audio(16000 + 250)
    features = WhisperLogMel(80, window_frames=100, long_audio="chunk")(waveform)
    tail = torch.nn.functional.pad(waveform[16000:], (0, N_FFT - 250))
    torch.testing.assert_close(features[100:], WhisperLogMel(80, window_frames=100)(tail), atol=0, rtol=0)
    assert features.shape[0] == 100 + N_FFT // 160


def test_audio_over_one_window_is_refused_by_default(audio):
    with pytest.raises(AudioError, match=r"1\.01 s exceeds the Whisper encoder's 1 s window; set long_audio: chunk"):
        WhisperLogMel(80, window_frames=100)(audio(16160))


def test_30s_is_accepted_and_more_is_refused(audio):
    preprocess = WhisperLogMel(80)
    assert preprocess(audio(480000)).shape == (3000, 80)
    with pytest.raises(AudioError, match=r"30\.00 s exceeds .* 30 s window"):
        preprocess(audio(480001))


def test_wrong_sample_rate_is_refused_unless_resampling(audio):
    waveform = audio(8000)
    with pytest.raises(AudioError, match="sample rate 8000 Hz but the encoder expects 16000 Hz"):
        WhisperLogMel(80)(RawAudio(waveform, 8000))
    features = WhisperLogMel(80, resample=True)(RawAudio(waveform, 8000))
    assert features.shape == (16000 // 160, 80)


@pytest.mark.parametrize(
    ("waveform", "message"),
    [
        (torch.zeros(0), "empty audio"),
        (torch.tensor([0.1, float("nan"), 0.2] * 200), "NaN"),
        (torch.zeros(2, 800), "mono"),
    ],
)
def test_bad_audio_is_named(waveform, message):
    with pytest.raises(AudioError, match=message):
        WhisperLogMel(80)(waveform)


def test_pickles_without_its_filter_cache(audio):
    preprocess = WhisperLogMel(128)
    features = preprocess(audio(3000))
    payload = pickle.dumps(preprocess)
    assert len(payload) < 1000
    torch.testing.assert_close(pickle.loads(payload)(audio(3000)), features, atol=0, rtol=0)


@pytest.mark.parametrize("samples", [1601, 16000 * 3 + 37])
def test_hop_320_equals_the_extractor_at_that_hop(samples, audio):
    """hop_length 320 (half Whisper's frame rate): N // 320 frames, as the extractor gives with hop_length=320."""
    waveform = audio(samples)
    ours = WhisperLogMel(80, hop_length=320)(waveform)
    extractor = WhisperFeatureExtractor(feature_size=80, hop_length=320)
    reference = extractor_features(extractor, waveform, padding="do_not_pad")
    assert ours.shape == (samples // 320, 80)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)
