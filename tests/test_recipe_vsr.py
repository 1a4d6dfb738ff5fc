"""recipes/vsr: the spec validates and `slam inspect` gives the paper's ~49M trainable parameters."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import soundfile
import torch
import yaml

from slam_core.model import build_component
from slam_core.runtime.cli import main
from slam_core.runtime.data import read_manifest
from slam_core.runtime.data.media import read_raw
from slam_core.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "vsr" / "spec.yaml"
UPSTREAM_COUNTS = ROOT / "plugins" / "av-hubert" / "tests" / "fixtures" / "param_counts.json"
#: SLAM-LLM's VSR projector ("cov1d-linear", ds_rate 5, encoder 1024, LLM 4096): Conv1d(1024, 1024, 5, stride 5),
#: Linear(1024, 2048), Linear(2048, 4096), with biases.
SLAM_LLM_PROJECTOR = (1024 * 1024 * 5 + 1024) + (1024 * 2048 + 2048) + (2048 * 4096 + 4096)


def inspect_rows(capsys) -> dict[str, tuple[int, int]]:
    assert main(["inspect", str(RECIPE)]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        match = re.match(r"^(\w+)\s+(?:\S+\s+)?([\d,]+)\s+([\d,]+)", line)
        if match:
            rows[match.group(1)] = tuple(int(n.replace(",", "")) for n in match.group(2, 3))
    return rows


def test_the_recipe_validates_as_lip_reading_with_av_hubert_large():
    spec = load_spec(RECIPE)
    assert (spec.encoder.type, spec.encoder.size, spec.encoder.modality) == ("av-hubert", "large", "video")
    assert spec.task.type == "vsr" and spec.train.freeze_encoder and spec.train.freeze_llm
    assert (spec.peft.r, spec.peft.alpha, spec.peft.dropout) == (32, 32, 0.05)


def test_slam_inspect_counts_49m_trainable_as_the_paper(capsys):
    from slam_core.spec import validate_spec

    document = yaml.safe_load(RECIPE.read_text())
    shape, lora, projector = validate_spec(document).llm.architecture(), document["peft"], document["projector"]
    hidden, layers = shape.hidden_size, shape.num_layers
    adapters = layers * len(lora["target_modules"]) * lora["r"] * (hidden + hidden)
    assert projector["type"] == "conv1d-projector"
    k, width = projector["k"], projector["hidden_dim"]
    projector_count = (1024 * 1024 * k + 1024) + (1024 * width + width) + (width * hidden + hidden)
    upstream = json.loads(UPSTREAM_COUNTS.read_text())["large"]

    rows = inspect_rows(capsys)
    assert rows["encoder"] == (upstream["encoder"] - upstream["audio_frontend"], 0)  # video only, frozen
    assert rows["peft"] == (adapters, adapters) and adapters == 33_554_432
    assert rows["projector"] == (projector_count, projector_count)
    assert rows["total"][1] == projector_count + adapters == SLAM_LLM_PROJECTOR + adapters == 49_290_240
    assert round(rows["total"][1] / 1e6) == 49


# --- recipes/vsr/prepare_data.py on a tiny LRS3 in av_hubert's prepared layout ---------------------------

TRANSCRIPTS = {"trainval/spk0/00001": "hello there", "pretrain/spk1/00002": "lip reading", "test/spk2/00003": "a test"}
SPLITS = {"train": ["trainval/spk0/00001", "pretrain/spk1/00002"], "valid": [], "test": ["test/spk2/00003"]}


def load_prepare():
    spec = importlib.util.spec_from_file_location("prepare_vsr", ROOT / "recipes" / "vsr" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_lrs3(root: Path, moved_from: Path | None = None) -> Path:
    """Mouth-crop videos (mp4, 96x96, 25 fps), 16 kHz audio and 433h_data/{split}.{tsv,wrd} as lrs3_manifest.py
    writes them; with ``moved_from``, the tables name paths under that (old) root instead."""
    for index, key in enumerate(TRANSCRIPTS):
        (root / "video" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "audio" / key).parent.mkdir(parents=True, exist_ok=True)
        video = str(root / "video" / f"{key}.mp4")
        writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (96, 96), False)
        for t in range(6 + index):
            writer.write(np.full((96, 96), 40 + 20 * t, np.uint8))
        writer.release()
        soundfile.write(root / "audio" / f"{key}.wav", np.zeros(16000 * (6 + index) // 25, np.float32), 16000)
    listed = (moved_from or root).absolute()
    (root / "433h_data").mkdir()
    for split, keys in SPLITS.items():
        lines = ["/"] + [f"{k}\t{listed}/video/{k}.mp4\t{listed}/audio/{k}.wav\t6\t3840" for k in keys]
        (root / "433h_data" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
        (root / "433h_data" / f"{split}.wrd").write_text("".join(TRANSCRIPTS[k] + "\n" for k in keys))
    return root


def test_prepare_data_writes_manifests_the_encoder_reads(tmp_path):
    lrs3 = fake_lrs3(tmp_path / "lrs3", moved_from=tmp_path / "elsewhere")
    assert load_prepare().main(["--lrs3", str(lrs3), "--output-dir", str(tmp_path / "out")]) == 0
    train = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [(e.key, e.fields["target"]) for e in train] == [(k, TRANSCRIPTS[k]) for k in SPLITS["train"]]
    assert not Path(json.loads((tmp_path / "out" / "train.jsonl").read_text().splitlines()[0])["source"]).is_absolute()
    assert read_manifest(tmp_path / "out" / "valid.jsonl") == []
    with torch.device("meta"):  # the recipe's encoder, without weights: its preprocessor is what the workers run
        encoder = build_component("encoder", load_spec(RECIPE).encoder)
    entry = read_manifest(tmp_path / "out" / "test.jsonl")[0]
    assert Path(entry.path).resolve() == (lrs3 / "video" / "test/spk2/00003.mp4").resolve()
    assert Path(entry.fields["audio"]).resolve() == (lrs3 / "audio" / "test/spk2/00003.wav").resolve()
    crops = encoder.preprocessor()(read_raw(entry, "video"))
    assert crops.shape == (8, 88, 88) and crops.dtype == torch.float32


def test_prepare_data_names_what_is_missing(tmp_path, capsys):
    prepare = load_prepare()
    assert prepare.main(["--lrs3", str(tmp_path / "nothing")]) == 2
    assert "LRS3 root not found" in capsys.readouterr().err
    lrs3 = fake_lrs3(tmp_path / "lrs3")
    (lrs3 / "video" / "pretrain/spk1/00002.mp4").unlink()
    assert prepare.main(["--lrs3", str(lrs3), "--output-dir", str(tmp_path / "out")]) == 2
    assert "the videos of 1 of 2 clips are missing (e.g. pretrain/spk1/00002.mp4" in capsys.readouterr().err
    assert prepare.main(["--lrs3", str(lrs3), "--output-dir", str(tmp_path / "out"), "--skip-missing"]) == 0
    assert [e.key for e in read_manifest(tmp_path / "out" / "train.jsonl")] == ["trainval/spk0/00001"]
    (lrs3 / "433h_data" / "test.wrd").write_text("")
    assert prepare.main(["--lrs3", str(lrs3), "--output-dir", str(tmp_path / "out"), "--skip-missing"]) == 2
    assert "test.tsv has 1 clips but" in capsys.readouterr().err


def test_the_recipe_tiny_trains_on_prepared_lrs3_then_decodes_and_scores(tmp_path):
    """The recipe's spec with tiny shapes of the same components, on prepare_data.py's manifests of real mp4s."""
    from slam_core.runtime.infer.decode import decode
    from slam_core.runtime.infer.evaluate import evaluate
    from slam_core.runtime.train import train
    from slam_core.spec import validate_spec

    lrs3 = fake_lrs3(tmp_path / "lrs3")
    assert load_prepare().main(["--lrs3", str(lrs3), "--output-dir", str(tmp_path / "data")]) == 0
    document = yaml.safe_load(RECIPE.read_text())
    shape = {"num_layers": 1, "hidden_size": 16, "intermediate_size": 24, "num_heads": 2}
    document["encoder"]["shape"] = {**shape, "conv_pos_kernel": 4, "conv_pos_groups": 2, "resnet_widths": [4, 4, 8, 8]}
    document["projector"].update(k=2, hidden_dim=16)
    document["llm"] = {
        "type": "toy-llm",
        "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64},
    }
    document["peft"].update(r=2, alpha=4)
    document["data"].update(
        train_manifest=str(tmp_path / "data" / "train.jsonl"),
        valid_manifest=str(tmp_path / "data" / "train.jsonl"),  # the fake LRS3 has no valid clips
        test_manifest=str(tmp_path / "data" / "test.jsonl"),
        batch_size=2,
        num_workers=0,
    )
    document["train"].update(dtype="fp32", epochs=2, max_steps=None, warmup_steps=1, eval_every_steps=None)
    document["train"].update(save_every_steps=None)  # best_metric stays the recipe's: wer
    document["infer"].update(batch_size=1, max_new_tokens=4, num_beams=1)
    spec = validate_spec(document)
    assert spec.train.best_metric == "wer"
    result = train(spec, run_dir=tmp_path / "run")  # from Python, as `slam train` takes the spec
    assert result.step == 2 and all(np.isfinite(list(result.losses.values())))
    assert [sorted(v) for v in result.validations] == [["loss", "step", "token_accuracy", "wer"]] * 2
    hypotheses = decode(spec, tmp_path / "hyp.jsonl", checkpoint=result.last_checkpoint)
    assert [json.loads(line)["key"] for line in Path(hypotheses).read_text().splitlines()] == ["test/spk2/00003"]
    assert evaluate(hypotheses, list(spec.task.metrics or ["wer"]))["count"] == 1
