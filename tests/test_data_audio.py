"""Audio files through soundfile: exact values (wav/flac), ogg, segments, mono mix-down, header durations, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from test_data_support import RATE, write_audio

from slam_core.audio import RawAudio
from slam_core.runtime.data import AudioFileError, audio_seconds, read_audio


@pytest.mark.parametrize(("suffix", "options"), [("wav", {}), ("flac", {}), ("wav", {"subtype": "FLOAT"})])
def test_lossless_files_read_back_exactly(tmp_path, suffix, options):
    expected = write_audio(tmp_path / f"a.{suffix}", 0.3, **options)[:, 0]
    raw = read_audio(str(tmp_path / f"a.{suffix}"))
    assert isinstance(raw, RawAudio) and raw.sample_rate == RATE
    assert raw.waveform.dtype == np.float32
    np.testing.assert_array_equal(raw.waveform, expected)


def test_ogg_vorbis_reads_close_to_what_was_written(tmp_path):
    t = np.arange(round(0.3 * RATE)) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(tmp_path / "a.ogg", tone, RATE, format="OGG", subtype="VORBIS")
    raw = read_audio(str(tmp_path / "a.ogg"))
    assert raw.waveform.shape == tone.shape
    assert np.abs(raw.waveform - tone).max() < 0.05  # lossy codec: close, not equal


@pytest.mark.parametrize("suffix", ["wav", "flac"])
def test_a_segment_reads_exactly_its_samples(tmp_path, suffix):
    expected = write_audio(tmp_path / f"a.{suffix}", 0.5)[:, 0]
    raw = read_audio(str(tmp_path / f"a.{suffix}"), offset=0.1, duration=0.2)
    np.testing.assert_array_equal(raw.waveform, expected[1600:4800])
    assert audio_seconds(str(tmp_path / f"a.{suffix}"), 0.1, 0.2) == pytest.approx(0.2)
    np.testing.assert_array_equal(read_audio(str(tmp_path / f"a.{suffix}"), offset=0.4).waveform, expected[6400:])


def test_multichannel_audio_is_mixed_down_or_one_channel_selected(tmp_path):
    expected = write_audio(tmp_path / "s.wav", 0.2, channels=3)
    np.testing.assert_allclose(read_audio(str(tmp_path / "s.wav")).waveform, expected.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(read_audio(str(tmp_path / "s.wav"), channels=(2,)).waveform, expected[:, 2])
    with pytest.raises(AudioFileError, match=r"channels \[3\] requested but the file has 3"):
        audio_seconds(str(tmp_path / "s.wav"), channels=(3,))


def test_durations_come_from_the_header(tmp_path):
    write_audio(tmp_path / "a.flac", 0.375)
    assert audio_seconds(str(tmp_path / "a.flac")) == 0.375
    assert audio_seconds(str(tmp_path / "a.flac"), offset=0.125) == 0.25


def test_a_segment_slightly_past_the_end_is_clipped_one_far_past_is_refused(tmp_path):
    write_audio(tmp_path / "a.wav", 0.25)
    assert read_audio(str(tmp_path / "a.wav"), offset=0.2, duration=0.06).waveform.shape == (800,)  # 10 ms over
    with pytest.raises(AudioFileError, match=r"a\.wav: segment 0\.2 s to 0\.4 s lies past the end of the file"):
        read_audio(str(tmp_path / "a.wav"), offset=0.2, duration=0.2)
    with pytest.raises(AudioFileError, match="past the end"):
        audio_seconds(str(tmp_path / "a.wav"), offset=0.3)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such audio file"), (b"RIFF1234WAVEjunk", "cannot read the audio"), ("empty", "empty audio file")],
)
def test_unusable_files_are_errors_naming_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.wav"
    if content == "empty":
        sf.write(path, np.zeros(0, np.int16), RATE)
    elif content is not None:
        path.write_bytes(content)
    for call in (audio_seconds, read_audio):
        with pytest.raises(AudioFileError, match=expected) as error:
            call(str(path))
        assert str(error.value).startswith(f"{path}: ")
