"""`slam train` then `slam infer` with a wav2vec2 (random init from ``size`` + ``shape``) and a WavLM
encoder (a tiny transformers folder)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import yaml
from hf_testing import TINY_LLM, tiny_shape
from safetensors.torch import load_file

from slam_core.runtime.cli import main

pytest.importorskip("slam_plugin_linear_projector")


def write_split(folder, name: str, count: int, seed: int) -> str:
    rows = []
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        audio = (0.1 * rng.standard_normal(int(16000 * rng.uniform(0.1, 0.3)))).astype("float32")
        soundfile.write(folder / f"{name}{index}.wav", audio, 16000)
        rows.append({"key": f"{name}{index}", "source": f"{name}{index}.wav", "target": f"word {index}"})
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return f"{name}.jsonl"


@pytest.mark.parametrize(("family", "layer", "random_init"), [("wav2vec2", None, True), ("wavlm", "weighted", False)])
def test_slam_train_then_slam_infer(family, layer, random_init, tiny_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    source = {"size": "base", "shape": tiny_shape(family)} if random_init else {"path": str(tiny_folder(family))}
    spec = {
        "encoder": {"type": family, **source, "layer": layer},
        "projector": {"type": "linear-projector", "k": 4, "hidden_dim": 16},
        "llm": {"type": "toy-llm", "shape": TINY_LLM},
        "task": {"type": "asr"},
        "data": {
            "train_manifest": write_split(tmp_path, "train", 4, seed=0),
            "valid_manifest": write_split(tmp_path, "valid", 2, seed=1),
            "test_manifest": write_split(tmp_path, "test", 3, seed=2),
            "batch_size": 2,
            "num_workers": 0,
        },
        "train": {"epochs": 2, "max_steps": 3, "warmup_steps": 0, "lr": 0.01, "dtype": "fp32", "engine": "single"},
        "infer": {"batch_size": 2, "max_new_tokens": 3},
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["train", "spec.yaml", "--run-dir", "run"]) == 0
    assert "training stopped at step 3" in capsys.readouterr().out
    (checkpoint,) = sorted((tmp_path / "run" / "checkpoints").glob("step-*"))[-1:]
    trainable = set(load_file(checkpoint / "trainable.safetensors"))
    assert any(name.startswith("projector.") for name in trainable)
    assert {name for name in trainable if name.startswith("encoder.")} == (
        {"encoder.mix.weights"} if layer == "weighted" else set()
    )  # frozen by default; only the layer mix trains
    assert main(["infer", "spec.yaml", "--checkpoint", "run", "--output", "hyps.jsonl"]) == 0
    records = [json.loads(line) for line in (tmp_path / "hyps.jsonl").read_text().splitlines()]
    assert sorted(r["key"] for r in records) == ["test0", "test1", "test2"]
    assert all(isinstance(r["hypothesis"], str) for r in records)
