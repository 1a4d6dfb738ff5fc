"""A tiny lip-reading pipeline from a manifest of .npy mouth crops: train (encoder too), decode, score WER."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from avhubert_testing import TINY

from slam_core.runtime.data.dataset import BadSampleError
from slam_core.runtime.infer.decode import decode
from slam_core.runtime.infer.evaluate import evaluate
from slam_core.runtime.train import train
from slam_core.spec import validate_spec

WORDS = ("bin blue at f two now", "place red by g nine again", "lay white in k four soon", "set green with p one")


def write_clips(folder: Path, frames=(12, 9, 15, 10), size: int = 96) -> list[dict]:
    """uint8 mouth-crop arrays [T, size, size] (a bright blob moving differently per clip) and manifest lines."""
    yy, xx = np.mgrid[0:size, 0:size]
    lines = []
    for index, (count, text) in enumerate(zip(frames, WORDS, strict=True)):
        clip = np.stack(
            [100 + 80 * np.exp(-((xx - 30 - 5 * index - t) ** 2 + (yy - 48) ** 2) / 200.0) for t in range(count)]
        ).astype(np.uint8)
        np.save(folder / f"clip{index}.npy", clip)
        lines.append({"key": f"clip{index}", "source": f"clip{index}.npy", "target": text, "fps": 25})
    return lines


def write_manifest(path: Path, lines: list[dict]) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


def tiny_vsr_spec(data: dict, run_dir: Path) -> dict:
    return {
        "name": "tiny-vsr",
        "encoder": {"type": "av-hubert", "shape": TINY, "modality": "video"},
        "projector": {"type": "linear-projector", "k": 5, "hidden_dim": 32},
        "llm": {
            "type": "toy-llm",
            "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64},
        },
        "peft": {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        "task": {"type": "vsr"},
        "data": {"batch_size": 2, "num_workers": 0, **data},
        "train": {
            "dtype": "fp32",
            "epochs": 2,
            "warmup_steps": 1,
            "lr": 1e-3,
            "freeze_encoder": False,  # the ResNet and transformer train too, on randomly cropped, flipped clips
            "output_dir": str(run_dir),
        },
        "infer": {"max_new_tokens": 6, "batch_size": 2},
    }


def test_a_tiny_lip_reading_pipeline_trains_decodes_and_scores(tmp_path):
    manifest = write_manifest(tmp_path / "lips.jsonl", write_clips(tmp_path))
    spec = validate_spec(tiny_vsr_spec({"train_manifest": manifest, "test_manifest": manifest}, tmp_path / "run"))
    result = train(spec, run_dir=tmp_path / "run")
    assert result.step == 4 and all(np.isfinite(list(result.losses.values())))
    encoder = result.model.encoder
    assert any(p.requires_grad for p in encoder.parameters()), "the encoder should have trained"
    hypotheses = decode(spec, tmp_path / "hyp.jsonl", checkpoint=result.last_checkpoint)
    records = [json.loads(line) for line in Path(hypotheses).read_text().splitlines()]
    assert sorted(r["key"] for r in records) == [f"clip{i}" for i in range(4)]
    report = evaluate(hypotheses, ["wer"])
    assert report["count"] == 4 and report["metrics"]["wer"] >= 0.0


def test_clips_smaller_than_the_lip_crop_are_bad_samples_named_by_file(tmp_path, caplog):
    lines = write_clips(tmp_path)
    (tmp_path / "small").mkdir()
    small = write_clips(tmp_path / "small", frames=(8, 8, 8, 8), size=64)[0]
    lines.append({**small, "key": "small", "source": "small/clip0.npy"})
    manifest = write_manifest(tmp_path / "lips.jsonl", lines)
    spec = tiny_vsr_spec({"train_manifest": manifest, "bad_samples": "skip"}, tmp_path / "run")
    spec["train"].update(epochs=1, freeze_encoder=True)
    with caplog.at_level(logging.WARNING):
        result = train(validate_spec(spec), run_dir=tmp_path / "run")
    assert result.step == 3
    assert any("small/clip0.npy" in m and "smaller than the 88x88 lip crop" in m for m in caplog.messages)
    spec["data"]["bad_samples"] = "error"
    with pytest.raises(BadSampleError, match=r"small/clip0\.npy.*64x64 pixels are smaller than the 88x88 lip crop"):
        train(validate_spec(spec), run_dir=tmp_path / "run-strict")
