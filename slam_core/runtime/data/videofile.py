"""Video files: lip-ROI frame arrays (``.npy``) natively, other containers (mp4, avi, ...) through OpenCV.

A ``.npy`` file holds frames ``[T, H, W]`` (grayscale) or ``[T, H, W, 3]`` (RGB); it has no frame
rate, so the manifest's ``fps`` field gives it (default :data:`DEFAULT_FPS`, the 25 fps of LRS3 and
AV-HuBERT). Video containers are decoded with ``opencv-python-headless`` (installed with
``slam-plugin-av-hubert``) to grayscale frames at the container's frame rate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from slam_core.runtime.data.errors import AudioFileError
from slam_core.video import RawVideo

#: Frame rate assumed for a ``.npy`` frame array whose manifest line gives no ``fps``.
DEFAULT_FPS = 25.0
ARRAY_SUFFIXES = frozenset({".npy"})


class VideoFileError(AudioFileError):
    """A video file that cannot be used: missing, unreadable, no frames, an unsupported layout."""


def video_seconds(path: str, fps: float | None = None) -> float:
    """Seconds of video in ``path``, from the array header or the container's metadata."""
    count, rate = _probe(_existing(path), fps)
    if count <= 0:
        raise VideoFileError(f"{path}: the video has no frames")
    return count / rate


def read_video(path: str, fps: float | None = None) -> RawVideo:
    """All frames of ``path`` as a :class:`RawVideo` (uint8 or float frames ``[T, H, W]`` or ``[T, H, W, 3]``)."""
    _existing(path)
    if Path(path).suffix.lower() in ARRAY_SUFFIXES:
        try:
            frames = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise VideoFileError(f"{path}: cannot read the frame array: {exc}") from None
        _check_array(path, frames.shape)
        return RawVideo(frames, float(fps or DEFAULT_FPS))
    with _opened(path) as (cv2, capture):
        rate = float(capture.get(cv2.CAP_PROP_FPS)) or float(fps or DEFAULT_FPS)
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame)
    if not frames:
        raise VideoFileError(f"{path}: no frames could be decoded (empty or corrupt video)")
    return RawVideo(np.stack(frames), rate)


def _probe(path: str, fps: float | None) -> tuple[int, float]:
    if Path(path).suffix.lower() in ARRAY_SUFFIXES:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise VideoFileError(f"{path}: cannot read the frame array header: {exc}") from None
        _check_array(path, shape)
        return shape[0], float(fps or DEFAULT_FPS)
    with _opened(path) as (cv2, capture):
        rate = float(capture.get(cv2.CAP_PROP_FPS)) or float(fps or DEFAULT_FPS)
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), rate


def _check_array(path: str, shape: tuple[int, ...]) -> None:
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[-1] not in (1, 3)):
        raise VideoFileError(
            f"{path}: expected frames [T, H, W] (grayscale) or [T, H, W, 3] (RGB), got an array of shape {shape}"
        )
    if shape[0] == 0:
        raise VideoFileError(f"{path}: the video has no frames")


def _existing(path: str) -> str:
    if not Path(path).is_file():
        raise VideoFileError(f"{path}: no such video file; check the manifest's source (relative to the manifest)")
    return path


@contextlib.contextmanager
def _opened(path: str) -> Iterator[tuple[Any, Any]]:
    """``(cv2, capture)`` of a video container OpenCV can open, released afterwards."""
    try:
        import cv2
    except ImportError:
        raise VideoFileError(
            f"{path}: reading video containers needs OpenCV: pip install opencv-python-headless "
            "(or store lip crops as .npy frame arrays)"
        ) from None
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoFileError(f"{path}: OpenCV cannot open the video (unknown container or codec?)")
        yield cv2, capture
    finally:
        capture.release()
