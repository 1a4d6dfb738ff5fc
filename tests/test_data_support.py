"""Helpers shared by the data-pipeline tests (tiny audio files and manifests); holds no tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from slam_core.toy import LogMel

RATE = 16000


def write_audio(
    path: Path, seconds: float = 0.25, *, channels: int = 1, rate: int = RATE, seed: int = 0, **options: Any
) -> np.ndarray:
    """Write int16 noise to ``path`` (format from the suffix); return it as float32 ``[frames, channels]``."""
    samples = np.random.default_rng(seed).integers(-8000, 8000, (round(seconds * rate), channels), dtype=np.int16)
    values = samples.astype(np.float32) / 32768
    sf.write(path, values if options.get("subtype") in ("FLOAT", "DOUBLE") else samples, rate, **options)
    return values


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def audio_manifest(directory: Path, seconds: Sequence[float], name: str = "train.jsonl") -> Path:
    """One wav per duration (``a{i}.wav``, key ``u{i}``, target ``text {i}``) and a SLAM manifest of them."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, duration in enumerate(seconds):
        write_audio(directory / f"a{i}.wav", duration, seed=i)
    records = [{"key": f"u{i}", "source": f"a{i}.wav", "target": f"text {i}"} for i in range(len(seconds))]
    return write_jsonl(directory / name, records)


def preprocessor() -> LogMel:
    """A real, small encoder preprocessor (the toy encoder's log-mel, 8 bins, 10 ms hop)."""
    return LogMel(RATE, n_mels=8, hop_length=160)
