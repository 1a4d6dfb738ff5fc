"""`slam infer`, `slam eval` and `--set` through the command's main()."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import yaml

from slam_core.runtime.cli import main

SPEC = {
    "encoder": {
        "type": "toy-encoder",
        "shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    },
    "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 16},
    "llm": {"type": "toy-llm", "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 32}},
    "task": {"type": "asr"},
    "data": {"test_manifest": "test.jsonl", "num_workers": 0},
    "infer": {"batch_size": 2, "max_new_tokens": 3},
}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    rows = []
    for index, key in enumerate(["u1", "u2", "u3"]):
        audio = 0.1 * np.random.default_rng(index).standard_normal(2000 + 500 * index).astype("float32")
        soundfile.write(tmp_path / f"{key}.wav", audio, 16000)
        rows.append({"key": key, "source": f"{key}.wav", "target": f"word {key}"})
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_infer_then_eval_with_the_spec_task_metrics(workdir, capsys):
    assert main(["infer", "spec.yaml", "--output", "out/hyps.jsonl", "--set", "infer.max_new_tokens=2"]) == 0
    lines = (workdir / "out" / "hyps.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == ["u1", "u2", "u3"]
    assert main(["eval", "out/hyps.jsonl", "--spec", "spec.yaml", "--output", "metrics.json"]) == 0
    assert "wer: " in capsys.readouterr().out  # the asr task's metric
    report = json.loads((workdir / "metrics.json").read_text())
    assert report["count"] == 3 and set(report["metrics"]) == {"wer"}


def test_eval_with_named_metrics(workdir, capsys):
    (workdir / "h.jsonl").write_text(json.dumps({"key": "a", "hypothesis": "a b", "target": "a c"}) + "\n")
    assert main(["eval", "h.jsonl", "--metrics", "wer,cer"]) == 0
    out = capsys.readouterr().out
    assert "wer: 0.5000" in out and "cer: 0.3333" in out


def test_eval_options_reach_the_metrics(workdir, capsys):
    record = {"key": "a", "hypothesis": "Hello, world", "target": "hello world", "rare": ["world"]}
    (workdir / "h.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["eval", "h.jsonl", "--metrics", "wer"]) == 0
    assert "wer: 0.0000" in capsys.readouterr().out
    assert main(["eval", "h.jsonl", "--metrics", "wer", "--option", "normalize=none"]) == 0
    assert "wer: 0.5000" in capsys.readouterr().out  # "Hello," is not "hello" without the normaliser
    assert main(["eval", "h.jsonl", "--metrics", "b_wer", "--option", "biasing_key=rare"]) == 0
    assert "b_wer: 0.0000" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["infer", "spec.yaml", "--output", "h.jsonl", "--set", "infer.max_new_tokens=0"], "infer.max_new_tokens"),
        (["infer", "spec.yaml", "--output", "h.jsonl", "--set", "infer"], "section.field=value"),
        (["infer", "spec.yaml", "--output", "h.jsonl", "--manifest", "missing.jsonl"], "missing.jsonl"),
        (["eval", "none.jsonl", "--metrics", "wer"], "no such hypotheses file"),
        (["eval", "h.jsonl", "--metrics", "werr"], "werr"),
        (["eval", "h.jsonl", "--metrics", "wer", "--option", "normalise=none"], "KEY one of normalize"),
        (["eval", "h.jsonl", "--metrics", "wer", "--option", "normalize"], "expected KEY=VALUE"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(workdir, capsys, argv, message):
    (workdir / "h.jsonl").write_text(json.dumps({"key": "a", "hypothesis": "a", "target": "a"}) + "\n")
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("slam: error:") and message in error and "Traceback" not in error


def test_train_then_decode_the_trained_checkpoint(workdir, capsys):
    lora = "peft={type: lora, r: 2, alpha: 4}"
    argv = [
        "train", "spec.yaml", "--run-dir", "run", "--score", "--set", lora,
        "--set", "data.train_manifest=test.jsonl", "--set", "data.valid_manifest=test.jsonl",
        "--set", "train.epochs=2", "--set", "train.max_steps=2", "--set", "train.dtype=fp32",
        "--set", "train.warmup_steps=0", "--set", "train.lr=0.01",
    ]  # fmt: skip
    assert main(argv) == 0
    assert "training stopped at step 2" in capsys.readouterr().out
    checkpoints = sorted((workdir / "run" / "checkpoints").glob("step-*"))
    assert checkpoints and (checkpoints[-1] / "adapter" / "adapter_config.json").is_file()
    history = [json.loads(line) for line in (workdir / "run" / "history.jsonl").read_text().splitlines()]
    assert any("wer" in json.dumps(entry) for entry in history)  # --score: validation decoded and scored
    assert main(["infer", "spec.yaml", "--checkpoint", "run", "--output", "h.jsonl", "--set", lora]) == 0
    assert len((workdir / "h.jsonl").read_text().splitlines()) == 3
    assert main([*argv[:4], "--fresh", *argv[5:]]) == 2  # a run with checkpoints is not overwritten
    assert "checkpoints of an earlier run" in capsys.readouterr().err


def test_a_task_metric_as_best_metric_turns_on_scoring_without_the_flag(workdir, capsys):
    argv = [
        "train", "spec.yaml", "--run-dir", "run", "--set", "data.train_manifest=test.jsonl",
        "--set", "data.valid_manifest=test.jsonl", "--set", "train.best_metric=wer", "--set", "train.max_steps=1",
        "--set", "train.dtype=fp32",
    ]  # fmt: skip
    assert main(argv) == 0
    best = json.loads((workdir / "run" / "checkpoints" / "best.json").read_text())
    assert best["metric"] == "wer" and "checkpoint" in json.dumps(best)


def test_a_best_metric_that_validation_never_reports_is_refused_before_training(workdir, capsys):
    argv = ["train", "spec.yaml", "--run-dir", "run", "--set", "data.train_manifest=test.jsonl"]
    assert main([*argv, "--set", "train.best_metric=wer"]) == 2
    error = capsys.readouterr().err
    assert "train.best_metric: 'wer' is not reported by validation" in error and "--score" in error
    assert not (workdir / "run" / "checkpoints").exists()


def test_storage_faults_are_one_line_each(workdir, capsys):
    (workdir / "a-file").write_text("")
    (workdir / "out").mkdir()
    train = ["train", "spec.yaml", "--set", "data.train_manifest=test.jsonl", "--set", "train.max_steps=1"]
    cases = [
        ([*train, "--run-dir", "a-file"], "a-file: is a file, not a run folder; choose another run folder"),
        (["infer", "spec.yaml", "--output", "out"], "out: is a folder; name the hypotheses file to write"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith("slam: error: ") and message in error, error
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".tmp")) == []
