"""Input paths in a spec: relative to the spec file's folder (``--set``: the working directory), checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from slam_core.runtime.cli import main
from slam_core.spec import load_spec
from slam_core.spec_paths import CHECK_HINT, MissingPathsError, check_input_paths, path_fields, resolve_path

TOY = {
    "encoder": {"type": "toy-encoder"},
    "projector": {"type": "linear-projector"},
    "llm": {"type": "toy-llm"},
    "task": {"type": "asr"},
}

pytestmark = pytest.mark.usefixtures("clean_discovery")


def write_spec(folder: Path, data: dict, **sections) -> Path:
    """``folder/spec.yaml``: the toy spec with ``data`` and any section replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump({**TOY, **sections, "data": data}), encoding="utf-8")
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("", encoding="utf-8")
    return path


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working directory that is not the spec's folder."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_relative_manifests_resolve_against_the_spec_folder_from_another_cwd(tmp_path, elsewhere, capsys):
    specdir = tmp_path / "run"
    touch(specdir / "data" / "train.jsonl"), touch(specdir / "data" / "valid.jsonl")
    spec_file = write_spec(
        specdir, {"train_manifest": "data/train.jsonl", "valid_manifest": "./data/../data/valid.jsonl"}
    )
    assert main(["spec", "validate", os.path.relpath(spec_file)]) == 0
    assert capsys.readouterr().out.startswith(f"{os.path.relpath(spec_file)}: valid (")
    spec = load_spec(os.path.relpath(spec_file))
    assert spec.data.train_manifest == str(specdir / "data" / "train.jsonl")
    assert spec.data.valid_manifest == str(specdir / "data" / "valid.jsonl")
    assert spec.train.output_dir == "runs/default"  # an output folder: relative to the working directory


def test_missing_manifests_are_all_listed_with_field_and_path(tmp_path, elsewhere, capsys):
    spec_file = write_spec(
        tmp_path / "run", {"train_manifest": "data/train.jsonl", "test_manifest": "/nowhere/t.jsonl"}
    )
    assert main(["spec", "validate", str(spec_file)]) == 2
    expected = (
        f"slam: error: invalid pipeline spec in {spec_file}:\n"
        f"  - data.train_manifest: no such file or folder: {tmp_path / 'run' / 'data' / 'train.jsonl'}\n"
        f"  - data.test_manifest: no such file or folder: /nowhere/t.jsonl\n"
        f"{CHECK_HINT}\n"
    )
    assert capsys.readouterr().err == expected
    with pytest.raises(MissingPathsError) as caught:
        check_input_paths(load_spec(spec_file), source=str(spec_file))
    assert caught.value.problems == [
        f"data.train_manifest: no such file or folder: {tmp_path / 'run' / 'data' / 'train.jsonl'}",
        "data.test_manifest: no such file or folder: /nowhere/t.jsonl",
    ]


def test_one_missing_path_is_one_line(tmp_path, elsewhere, capsys):
    spec_file = write_spec(tmp_path / "run", {"valid_manifest": "v.jsonl"})
    assert main(["spec", "validate", str(spec_file)]) == 2
    missing = tmp_path / "run" / "v.jsonl"
    assert capsys.readouterr().err == (
        f"slam: error: invalid pipeline spec in {spec_file}: data.valid_manifest: no such file or folder: {missing}\n"
        f"{CHECK_HINT}\n"
    )


def test_no_check_paths_passes_a_spec_meant_for_another_machine(tmp_path, elsewhere, capsys):
    spec_file = write_spec(tmp_path / "run", {"train_manifest": "data/train.jsonl"})
    assert main(["spec", "validate", "--no-check-paths", str(spec_file)]) == 0
    assert capsys.readouterr().out.startswith(f"{spec_file}: valid (encoder=toy-encoder")


def test_set_values_resolve_against_the_working_directory(tmp_path, elsewhere):
    spec_file = write_spec(tmp_path / "run", {"train_manifest": "train.jsonl", "valid_manifest": "valid.jsonl"})
    spec = load_spec(spec_file, overrides=["data.train_manifest=mine/train.jsonl", "train.lr=3e-4"])
    assert spec.data.train_manifest == str(elsewhere / "mine" / "train.jsonl")
    assert spec.data.valid_manifest == str(tmp_path / "run" / "valid.jsonl")  # still the spec file's folder
    spec = load_spec(spec_file, overrides=["data={train_manifest: t.jsonl}"])  # a whole section set
    assert spec.data.train_manifest == str(elsewhere / "t.jsonl") and spec.data.valid_manifest is None


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = load_spec(write_spec(tmp_path / "run", {"train_manifest": "~/corpus/train.jsonl"}))
    assert spec.data.train_manifest == str(tmp_path / "home" / "corpus" / "train.jsonl")


def test_train_fails_before_building_with_the_same_message(tmp_path, elsewhere, capsys):
    # slam train does not read the test manifest: only the train one is reported
    spec_file = write_spec(tmp_path / "run", {"train_manifest": "train.jsonl", "test_manifest": "test.jsonl"})
    assert main(["train", str(spec_file), "--set", "train.output_dir=out"]) == 2
    assert capsys.readouterr().err == (
        f"slam: error: invalid pipeline spec in {spec_file}: data.train_manifest: no such file or folder: "
        f"{tmp_path / 'run' / 'train.jsonl'}\n{CHECK_HINT}\n"
    )
    assert not (elsewhere / "out").exists()  # nothing was started


def test_infer_checks_only_the_manifest_it_reads(tmp_path, elsewhere, capsys):
    spec_file = write_spec(tmp_path / "run", {"train_manifest": "train.jsonl", "test_manifest": "test.jsonl"})
    assert main(["infer", str(spec_file), "--output", "h.jsonl"]) == 2
    assert capsys.readouterr().err == (
        f"slam: error: invalid pipeline spec in {spec_file}: data.test_manifest: no such file or folder: "
        f"{tmp_path / 'run' / 'test.jsonl'}\n{CHECK_HINT}\n"
    )


def test_plugin_path_fields_are_found_by_their_type(tmp_path, elsewhere):
    pytest.importorskip("slam_plugin_whisper")
    pytest.importorskip("slam_plugin_vicuna")
    specdir = tmp_path / "run"
    sections = {
        "encoder": {"type": "whisper", "path": "ckpt/whisper"},
        "llm": {"type": "vicuna", "gguf": "models/llm.gguf", "tokenizer": "smollm2"},
        "task": {"type": "contextual-asr", "filter": {"common_words": "words.txt"}},
        "fusion": {
            "branches": [
                {
                    "name": "music",
                    "encoder": {"type": "whisper", "path": "/abs/w"},
                    "projector": {"type": "linear-projector"},
                }
            ]
        },
    }
    spec = load_spec(write_spec(specdir, {"train_manifest": "t.jsonl"}, **sections))
    assert sorted((found.field, found.value) for found in path_fields(spec)) == [
        ("data.train_manifest", str(specdir / "t.jsonl")),
        ("encoder.path", str(specdir / "ckpt" / "whisper")),
        ("fusion.branches.0.encoder.path", "/abs/w"),
        ("llm.gguf", str(specdir / "models" / "llm.gguf")),  # llm.tokenizer: smollm2 is a name, not a path
        ("task.filter.common_words", str(specdir / "words.txt")),
    ]
    assert spec.llm.tokenizer == "smollm2"


def test_a_name_among_the_path_choices_is_no_path(tmp_path, elsewhere):
    pytest.importorskip("slam_plugin_vicuna")
    spec = load_spec(write_spec(tmp_path / "run", {}, llm={"type": "vicuna", "gguf": "smollm2"}))
    assert spec.llm.gguf == "smollm2" and list(path_fields(spec)) == []
    check_input_paths(spec)  # nothing to check


_SEGMENT = st.text(alphabet="abcXYZ09_-. ", min_size=1, max_size=6).filter(lambda s: s not in {".", ".."})


@given(st.lists(st.sampled_from(["..", "."]) | _SEGMENT, min_size=1, max_size=5))
def test_a_relative_path_resolves_under_the_spec_folder(parts):
    folders = ["specs", "run"]  # the reference: walk the parts from the spec's folder
    for part in parts:
        if part == "..":
            folders = folders[:-1]
        elif part != ".":
            folders.append(part)
    resolved = resolve_path("/".join(parts), Path("/specs/run"))
    assert resolved == "/" + "/".join(folders)
    assert resolve_path(resolved, Path("/elsewhere")) == resolved  # an absolute path stays as it is
