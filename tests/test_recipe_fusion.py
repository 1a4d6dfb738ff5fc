"""recipes/fusion: the whisper + BEATs fusion spec inspects at paper scale and runs end to end when tiny."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from slam_core.runtime.infer.decode import decode
from slam_core.runtime.infer.evaluate import evaluate
from slam_core.runtime.inspect import inspect_spec
from slam_core.runtime.train import train
from slam_core.spec import load_spec, validate_spec

RECIPE = Path(__file__).parents[1] / "recipes" / "fusion" / "spec.yaml"
CAPTIONS = ("a dog barks", "rain falls on a roof", "a man speaks", "birds sing")


def linear_projector_parameters(input_dim: int, k: int, hidden: int, output: int) -> int:
    return input_dim * k * hidden + hidden + hidden * output + output


def test_the_recipe_inspects_with_one_row_per_branch():
    report = inspect_spec(load_spec(RECIPE))
    rows = {row.component: row for row in report.counts}
    assert [rows[name].type for name in ("encoder", "beats.encoder", "llm")] == ["whisper", "beats", "vicuna"]
    assert rows["projector"].trainable == linear_projector_parameters(1280, 5, 2048, 4096)
    assert rows["beats.projector"].trainable == linear_projector_parameters(768, 8, 2048, 4096)
    lora = 2 * 32 * (4096 * 8 + 8 * 4096)  # r=8 on q and v of 32 layers
    assert rows["peft"].trainable == lora
    assert report.trainable == rows["projector"].trainable + rows["beats.projector"].trainable + lora
    assert rows["encoder"].trainable == rows["beats.encoder"].trainable == 0


def _tiny(document: dict, data: dict) -> dict:
    document["encoder"] = {
        "type": "whisper",
        "shape": {
            "hidden_size": 32,
            "num_layers": 1,
            "num_heads": 4,
            "intermediate_size": 64,
            "max_position_embeddings": 100,
        },
    }
    document["projector"] = {"type": "linear-projector", "k": 5, "hidden_dim": 32}
    document["fusion"]["branches"][0]["encoder"] = {
        "type": "beats",
        "shape": {
            "patch_embed_dim": 16,
            "num_layers": 1,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_heads": 4,
            "conv_pos_kernel": 7,
            "conv_pos_groups": 4,
            "num_buckets": 16,
            "max_distance": 32,
        },
    }
    document["fusion"]["branches"][0]["projector"] = {"type": "linear-projector", "k": 8, "hidden_dim": 32}
    document["llm"] = {
        "type": "toy-llm",
        "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64},
    }
    document["peft"] = {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0}
    document["data"] = data
    document["train"].update({"dtype": "fp32", "epochs": 2, "warmup_steps": 1, "lr": 1e-3})
    document["infer"] = {"max_new_tokens": 6, "batch_size": 2}
    return document


@pytest.fixture
def manifest(tmp_path) -> str:
    rng = np.random.default_rng(0)
    lines = []
    for index, caption in enumerate(CAPTIONS):
        soundfile.write(
            tmp_path / f"clip{index}.wav", 0.1 * rng.standard_normal(int(16000 * (0.4 + 0.1 * index))), 16000
        )
        lines.append(json.dumps({"key": f"clip{index}", "source": f"clip{index}.wav", "target": caption}))
    path = tmp_path / "clips.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_tiny_fusion_pipeline_trains_decodes_and_scores(tmp_path, manifest):
    data = {"train_manifest": manifest, "test_manifest": manifest, "batch_size": 2, "num_workers": 0}
    spec = validate_spec(_tiny(yaml.safe_load(RECIPE.read_text()), data))
    result = train(spec, run_dir=tmp_path / "run")
    assert result.step == 4 and all(np.isfinite(list(result.losses.values())))
    hypotheses = decode(spec, tmp_path / "hyp.jsonl", checkpoint=result.last_checkpoint)
    records = [json.loads(line) for line in Path(hypotheses).read_text().splitlines()]
    assert sorted(r["key"] for r in records) == [f"clip{i}" for i in range(4)]
    report = evaluate(hypotheses, ["cider_d"], caption_tokenizer="python")
    assert report["count"] == 4 and report["metrics"]["cider_d"] >= 0.0
