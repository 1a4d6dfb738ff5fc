"""Every `slam` command over a table of bad inputs: exit 2, one `slam: error:` line naming the thing, no traceback.

Checkpoints come from the plugins' tiny fixtures: missing, truncated to half, or another model's file.
`slam inspect` builds on the meta device (the checkpoint is checked, not copied); `slam infer`
loads the weights for real. A few rows run the real `slam` command in a subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml
from fakedist import component_source
from support import subprocess_env

from slam_core.runtime.cli import main

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
#: encoder type -> a tiny released-format checkpoint of it, and another model's checkpoint
CHECKPOINTS = {
    "whisper": (PLUGINS / "whisper/tests/fixtures/tiny_openai.pt", PLUGINS / "beats/tests/fixtures/tiny_beats.pt"),
    "beats": (PLUGINS / "beats/tests/fixtures/tiny_beats.pt", PLUGINS / "whisper/tests/fixtures/tiny_openai.pt"),
    "mert": (PLUGINS / "mert/tests/fixtures/mert-tiny-95m", PLUGINS / "av-hubert/tests/fixtures"),
    "av-hubert": (
        PLUGINS / "av-hubert/tests/fixtures/avhubert-tiny.pt",
        PLUGINS / "beats/tests/fixtures/tiny_beats.pt",
    ),
}
TOY_ENCODER = {"type": "toy-encoder", "shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2}}
TOY_LLM = {"type": "toy-llm", "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 32}}


def spec_of(encoder: dict, **sections) -> dict:
    return {
        "encoder": encoder,
        "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 16},
        "llm": TOY_LLM,
        "task": {"type": "asr"},
        "data": {"test_manifest": "test.jsonl", "num_workers": 0},
        "infer": {"batch_size": 1, "max_new_tokens": 2},
    } | sections


def encoder_of(kind: str, path: Path) -> dict:
    return {"type": kind, "path": str(path)} | ({"modality": "audio"} if kind == "av-hubert" else {})


def truncated(source: Path, folder: Path) -> Path:
    """A copy of ``source`` (a file, or a folder's weight files) cut to half its bytes."""
    if source.is_file():
        target = folder / f"half-{source.name}"
        target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
        return target
    target = Path(shutil.copytree(source, folder / f"half-{source.name}"))
    for weights in [*target.glob("*.bin"), *target.glob("*.safetensors")]:
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return target


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    audio = 0.1 * np.random.default_rng(0).standard_normal(16000).astype("float32")
    soundfile.write(tmp_path / "a.wav", audio, 16000)
    (tmp_path / "test.jsonl").write_text(json.dumps({"key": "a", "source": "a.wav", "target": "a"}) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_spec(folder: Path, spec: dict, name: str = "spec.yaml") -> Path:
    (folder / name).write_text(yaml.safe_dump(spec))
    return folder / name


def one_error(capsys) -> str:
    """The command's stderr, which must hold exactly one `slam: error:` line and no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("slam: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_each_encoder_checkpoint_fault_is_one_line_naming_the_file(workdir, capsys, kind):
    good, other = CHECKPOINTS[kind]
    cases = {
        "missing": (workdir / "nowhere.pt", ["spec", "validate"]),
        "another model's": (other, ["inspect"]),
        "truncated": (truncated(good, workdir), ["infer"]),
    }
    for case, (path, command) in cases.items():
        spec = write_spec(workdir, spec_of(encoder_of(kind, path)))
        argv = [*command, str(spec)] + (["--output", "h.jsonl"] if command == ["infer"] else [])
        assert main(argv) == 2, (kind, case)
        assert str(path) in one_error(capsys), (kind, case)


@pytest.mark.parametrize("kind", CHECKPOINTS)
def test_inspect_builds_every_encoder_with_a_path_on_the_meta_device_quietly(workdir, capsys, kind):
    spec = write_spec(workdir, spec_of(encoder_of(kind, CHECKPOINTS[kind][0])))
    assert main(["inspect", str(spec)]) == 0
    captured = capsys.readouterr()
    assert "encoder" in captured.out
    assert len(captured.err.splitlines()) <= 2, captured.err


def test_llm_checkpoint_faults_are_one_line_naming_the_file(workdir, capsys):
    cases = {
        "missing folder": {"type": "vicuna", "path": str(workdir / "no-llm")},
        "missing gguf": {"type": "vicuna", "gguf": str(workdir / "no.gguf")},
        "truncated gguf": {"type": "vicuna", "gguf": str(workdir / "half.gguf")},
    }
    (workdir / "half.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 40)
    for case, llm in cases.items():
        spec = write_spec(workdir, spec_of(TOY_ENCODER, llm=llm))
        assert main(["infer", str(spec), "--output", "h.jsonl"]) == 2, case
        assert (llm.get("path") or llm.get("gguf")) in one_error(capsys), case


@pytest.mark.parametrize(
    ("manifest", "named"),
    [
        (None, "no-such.jsonl"),
        ('{"key": "a", "source": "a.wav", "target": "a"}\n{"key": "b", "source":\n', "test.jsonl:2"),
        ('{"key": "a", "target": "a"}\n', "test.jsonl:1"),
        ('{"key": "a", "source": "missing.wav", "target": "a"}\n', "missing.wav"),
    ],
    ids=["missing file", "bad JSON line", "no source", "missing audio"],
)
def test_bad_manifests_are_one_line_naming_the_manifest(workdir, capsys, manifest, named):
    spec = spec_of(TOY_ENCODER)
    if manifest is None:
        spec["data"] = spec["data"] | {"test_manifest": "no-such.jsonl"}
    else:
        (workdir / "test.jsonl").write_text(manifest)
    path = write_spec(workdir, spec)
    argv = ["infer", str(path), "--output", "h.jsonl"] if manifest else ["spec", "validate", str(path)]
    assert main(argv) == 2
    assert named in one_error(capsys)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("encoder: {type: toy-encoder\nllm: x\n", "spec.yaml"),
        (yaml.safe_dump(spec_of(TOY_ENCODER) | {"trian": {}}), "trian"),
        (yaml.safe_dump(spec_of(TOY_ENCODER, infer={"batch_size": "two"})), "infer.batch_size"),
    ],
    ids=["YAML syntax", "unknown field", "wrong type"],
)
def test_bad_specs_are_one_line_naming_the_field(workdir, capsys, text, named):
    (workdir / "spec.yaml").write_text(text)
    for command in (["spec", "validate"], ["inspect"], ["train"]):
        assert main([*command, "spec.yaml"]) == 2, command
        assert named in one_error(capsys), command


def test_a_plugin_whose_factory_fails_is_one_line_naming_the_distribution(workdir, capsys, fake_site):
    fake_site.write_module("fake_broken_impl", "def build(config, **context):\n    raise ValueError('no GPU here')\n")
    fake_site.add_plugin("fake-broken", component_source("encoder", "broken-enc", factory="fake_broken_impl:build"))
    path = write_spec(workdir, spec_of({"type": "broken-enc"}))
    assert main(["inspect", str(path)]) == 2
    line = one_error(capsys)
    assert "fake-broken" in line and "no GPU here" in line


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["spec", "validate", "bad.yaml"], "bad.yaml"),
        (["inspect", "half.yaml"], "half-tiny_openai.pt"),
        (["train", "spec.yaml", "--set", "data.train_manifest=no-train.jsonl"], "no-train.jsonl"),
        (["infer", "spec.yaml", "--output", "out"], "out: is a folder"),
        (["eval", "none.jsonl", "--metrics", "wer"], "none.jsonl"),
    ],
)
def test_the_real_command_prints_one_line_and_exits_2(workdir, argv, named):
    (workdir / "bad.yaml").write_text("encoder: [\n")
    write_spec(workdir, spec_of(encoder_of("whisper", truncated(CHECKPOINTS["whisper"][0], workdir))), "half.yaml")
    write_spec(workdir, spec_of(TOY_ENCODER))
    (workdir / "out").mkdir()
    slam = [sys.executable, "-c", "import sys; from slam_core.runtime.cli import main; sys.exit(main())"]
    done = subprocess.run([*slam, *argv], capture_output=True, text=True, env=subprocess_env(HF_HUB_OFFLINE="1"))
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("slam: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr and named in errors[0], done.stderr
