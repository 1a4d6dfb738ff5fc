"""Video and audio-visual samples in the data pipeline: .npy lip crops, video containers, the audio field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from slam_core.runtime.data.dataset import SampleDataset
from slam_core.runtime.data.errors import BadSampleError
from slam_core.runtime.data.index import index_entries
from slam_core.runtime.data.loader import manifest_batches
from slam_core.runtime.data.manifest import read_manifest
from slam_core.runtime.data.media import combined_modality, media_seconds, read_raw
from slam_core.runtime.data.videofile import VideoFileError, read_video, video_seconds
from slam_core.spec import DataSpec
from slam_core.video import RawAudioVisual, RawVideo, VideoError, prepare_frames


def _frames(count: int, seed: int = 0, size: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, size, size), dtype=np.uint8)


def _manifest(tmp_path, lines: list[dict]) -> str:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


class FramesAndAudioLength:
    """A picklable preprocessor: the frames as float and, with audio, one audio frame per video frame."""

    def __call__(self, raw):
        if isinstance(raw, RawAudioVisual):
            video = torch.as_tensor(prepare_frames(raw.video))
            audio = torch.as_tensor(raw.audio.waveform).reshape(-1)[: video.shape[0] * 640]
            return {"video": video, "audio": audio.reshape(video.shape[0], 640)}
        return torch.as_tensor(prepare_frames(raw))


def test_npy_lip_crops_read_with_the_manifest_fps(tmp_path):
    np.save(tmp_path / "a.npy", _frames(50))
    np.save(tmp_path / "b.npy", _frames(30, 1))
    entries = read_manifest(
        _manifest(
            tmp_path, [{"key": "a", "source": "a.npy", "target": "x"}, {"key": "b", "source": "b.npy", "fps": 30}]
        )
    )
    assert [media_seconds(e, "video") for e in entries] == [2.0, 1.0]
    raw = read_raw(entries[1], "video")
    assert isinstance(raw, RawVideo) and raw.fps == 30.0 and np.array_equal(raw.frames, _frames(30, 1))


def test_rgb_frames_become_grayscale_and_a_wrong_rate_is_refused():
    rgb = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 100
    gray = prepare_frames(RawVideo(rgb, 25.0))
    assert gray.shape == (2, 4, 4) and np.allclose(gray, 29.9)
    with pytest.raises(VideoError, match="30 frames per second but the encoder expects 25"):
        prepare_frames(RawVideo(gray, 30.0), fps=25.0)
    with pytest.raises(VideoError, match="no frames"):
        prepare_frames(RawVideo(np.zeros((0, 4, 4)), 25.0))


@pytest.mark.parametrize(
    ("array", "message"),
    [(np.zeros((4, 5)), r"expected frames \[T, H, W\]"), (np.zeros((0, 8, 8)), "no frames")],
)
def test_a_bad_frame_array_is_named(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(VideoFileError, match=message) as caught:
        video_seconds(str(tmp_path / "bad.npy"))
    assert "bad.npy" in str(caught.value)
    with pytest.raises(VideoFileError, match="no such video file"):
        read_video(str(tmp_path / "absent.npy"))


def test_a_video_container_is_decoded_with_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for index in range(10):
        writer.write(np.full((24, 32, 3), 20 * index, dtype=np.uint8))
    writer.release()
    assert video_seconds(path) == pytest.approx(0.4)
    raw = read_video(path)
    assert raw.fps == pytest.approx(25.0) and raw.frames.shape == (10, 24, 32)
    assert np.abs(raw.frames.mean(axis=(1, 2)) - 20 * np.arange(10)).max() < 3  # lossy MJPG


def test_audio_visual_samples_read_the_audio_field_and_batch_as_aligned_streams(tmp_path):
    for index, count in enumerate((10, 7)):
        np.save(tmp_path / f"v{index}.npy", _frames(count, index))
        soundfile.write(tmp_path / f"a{index}.wav", np.zeros(count * 640 + 100), 16000)
    lines = [{"key": f"k{i}", "source": f"v{i}.npy", "audio": f"a{i}.wav", "target": "t"} for i in range(2)]
    data = DataSpec(batch_size=2, num_workers=0)
    batches = manifest_batches(
        _manifest(tmp_path, lines), FramesAndAudioLength(), data, shuffle=False, seed=0, modality="audio-visual"
    )
    batches.set_epoch(0)
    (batch,) = list(batches)
    assert batch.feature_lengths.tolist() == [10, 7]
    assert batch.features["video"].shape == (2, 10, 12, 12) and batch.features["audio"].shape == (2, 10, 640)
    assert not batch.features["video"][1, 7:].any()


def test_an_audio_visual_sample_without_audio_is_a_named_bad_sample(tmp_path):
    np.save(tmp_path / "v.npy", _frames(5))
    entries = read_manifest(_manifest(tmp_path, [{"key": "k", "source": "v.npy", "target": "t"}]))
    with pytest.raises(BadSampleError, match=r"'k'.*needs the sample's audio in an 'audio' field"):
        index_entries(entries, max_duration_s=10, bad_samples="error", modality="audio-visual")
    dataset = SampleDataset(entries, FramesAndAudioLength(), skip_bad=True, modality="audio-visual")
    assert dataset[0][1] is None  # skipped under bad_samples: skip


def test_over_long_videos_are_refused_by_duration(tmp_path):
    np.save(tmp_path / "long.npy", _frames(100))
    entries = read_manifest(_manifest(tmp_path, [{"key": "k", "source": "long.npy"}]))
    with pytest.raises(BadSampleError, match=r"4\.00 s of video exceeds data\.max_duration_s = 3 s"):
        index_entries(entries, max_duration_s=3, bad_samples="error", modality="video")


def test_combined_modality_of_branches():
    assert combined_modality({"audio"}) == "audio"
    assert combined_modality({"video"}) == "video"
    assert combined_modality({"audio", "video"}) == "audio-visual"
    with pytest.raises(ValueError, match="unknown modalities"):
        combined_modality({"smell"})
