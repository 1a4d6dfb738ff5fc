"""train() on the data pipeline's own batches (manifests, the default batches factory), resumed mid-epoch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file
from support.synthetic import WORDS, toy_spec

from slam_core.runtime.train import train
from slam_core.spec import validate_spec


def write_split(directory, name: str, count: int, seed: int) -> str:
    """``count`` short random-noise wav files and a SLAM-LLM jsonl manifest naming them."""
    rng = np.random.default_rng(seed)
    lines = []
    for index in range(count):
        audio = directory / f"{name}{index}.wav"
        soundfile.write(audio, 0.1 * rng.standard_normal(int(16000 * rng.uniform(0.15, 0.4))), 16000)
        target = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
        lines.append(json.dumps({"key": f"{name}{index}", "source": audio.name, "target": target}))
    manifest = directory / f"{name}.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return str(manifest)


class Crash(Exception):
    pass


def test_training_from_manifests_resumes_exactly(tmp_path):
    data = {
        "train_manifest": write_split(tmp_path, "train", 12, 0),
        "valid_manifest": write_split(tmp_path, "valid", 4, 1),
        "batch_size": 2,
        "num_workers": 0,
    }
    train_section = {"epochs": 2, "save_every_steps": 2, "keep_last": None}
    spec = validate_spec(toy_spec(data=data, train=train_section, peft={"dropout": 0.2}))
    full = train(spec, run_dir=tmp_path / "full")
    assert full.step == 12 and [v["step"] for v in full.validations] == [6, 12]

    def crash(info):
        if info.step == 3:
            raise Crash

    with pytest.raises(Crash):
        train(spec, run_dir=tmp_path / "crashed", on_step=crash)
    resumed = train(spec, run_dir=tmp_path / "crashed")
    assert resumed.resumed_from.name == "step-00000002"
    assert resumed.losses == {s: full.losses[s] for s in range(3, 13)}
    want = load_file(full.last_checkpoint / "trainable.safetensors")
    got = load_file(resumed.last_checkpoint / "trainable.safetensors")
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_without_a_manifest_the_default_factory_says_what_is_missing(tmp_path):
    spec = validate_spec(toy_spec())
    with pytest.raises(Exception, match="train_manifest"):
        train(spec, run_dir=tmp_path)
