"""Sample fields the task head cannot use (no target, a target of the wrong type) are bad samples.

They are found when the manifest is indexed, before any batch, named by manifest file and line,
and follow ``data.bad_samples`` like broken audio: ``slam train`` stops with one error line;
under ``skip`` they are left out, ``slam infer`` writes a line with the ``error`` for each, and
``slam eval`` counts them apart.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import yaml
from support.synthetic import toy_spec
from test_data_support import audio_manifest, preprocessor, write_audio, write_jsonl

from slam_core.model import build_component
from slam_core.runtime.cli import main
from slam_core.runtime.data import BadSampleError, manifest_batches
from slam_core.runtime.tasks.configs import AACTaskConfig, ASRTaskConfig, ContextualASRTaskConfig
from slam_core.spec import DataSpec

SKIP = "set data.bad_samples: skip to skip such samples"


def _manifest(tmp_path, bad: dict, name: str = "train.jsonl"):
    """Three good samples (``u0``..``u2``, 0.2 s each) and, on line 2, ``bad`` (key ``bad``, its own audio)."""
    manifest = audio_manifest(tmp_path, [0.2, 0.2, 0.2], name)
    write_audio(tmp_path / "bad.wav", 0.2)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    records.insert(1, {"key": "bad", "source": "bad.wav", **bad})
    return write_jsonl(manifest, records)


def _check(task_config, *, needs_target=True):
    task = build_component("task", task_config)
    return lambda fields: task.sample_problem(fields, needs_target=needs_target)


def _batches(manifest, policy, check):
    data = DataSpec(batch_size=2, num_workers=0, bad_samples=policy)
    return manifest_batches(manifest, preprocessor(), data, shuffle=False, seed=0, sample_problem=check)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({}, "asr sample 'bad' has no 'target' field (the transcript)"),
        ({"target": 5}, "asr sample 'bad': 'target' must be a string (the transcript), got int 5"),
        ({"target": ["a", "b"]}, "asr sample 'bad': 'target' must be a string (the transcript), got list ['a', 'b']"),
    ],
)
def test_an_unusable_target_is_a_bad_sample_named_by_manifest_line(tmp_path, bad, reason):
    manifest = _manifest(tmp_path, bad)
    with pytest.raises(BadSampleError) as error:
        _batches(manifest, "error", _check(ASRTaskConfig(type="asr")))
    assert str(error.value) == f"{manifest}:2: {reason}; {SKIP}"


def test_under_skip_it_is_left_out_with_its_reason_before_any_batch(tmp_path):
    manifest = _manifest(tmp_path, {"target": None})
    batches = _batches(manifest, "skip", _check(ASRTaskConfig(type="asr")))
    assert [entry.key for entry in batches.dataset.entries] == ["u0", "u1", "u2"]
    assert batches.skip_reasons == {
        "bad": f"{manifest}:2: asr sample 'bad': 'target' must be a string (the transcript), got NoneType None"
    }
    assert [key for batch in batches for key in batch.keys] == ["u0", "u1", "u2"]


def test_a_decoded_split_needs_no_target_but_a_given_one_must_be_usable(tmp_path):
    without = _manifest(tmp_path / "a", {})
    assert len(_batches(without, "error", _check(ASRTaskConfig(type="asr"), needs_target=False)).dataset) == 4
    wrong = _manifest(tmp_path / "b", {"target": 7})
    with pytest.raises(BadSampleError, match=r":2: asr sample 'bad': 'target' must be a string"):
        _batches(wrong, "error", _check(ASRTaskConfig(type="asr"), needs_target=False))


def test_aac_takes_a_list_of_captions_and_refuses_a_list_with_a_non_string(tmp_path):
    check = _check(AACTaskConfig(type="aac"))
    assert len(_batches(_manifest(tmp_path / "a", {"target": ["a dog", "a cat"]}), "error", check).dataset) == 4
    manifest = _manifest(tmp_path / "b", {"target": ["a dog", 3]})
    with pytest.raises(BadSampleError) as error:
        _batches(manifest, "error", check)
    assert str(error.value) == (
        f"{manifest}:2: aac sample 'bad': 'target' must be a caption or a non-empty list of non-empty captions, "
        f"got ['a dog', 3]; {SKIP}"
    )


@pytest.mark.parametrize("needs_target", [True, False])
@pytest.mark.parametrize("words", [5, ["paris", 3]])
def test_a_biasing_list_that_is_not_a_list_of_words_is_a_bad_sample(tmp_path, words, needs_target):
    # contextual-asr reads biasing_words only when it prepares a batch: found at indexing instead
    manifest = _manifest(tmp_path, {"target": "to paris", "biasing_words": words})
    check = _check(ContextualASRTaskConfig(type="contextual-asr"), needs_target=needs_target)
    with pytest.raises(BadSampleError) as error:
        _batches(manifest, "error", check)
    assert str(error.value) == (
        f"{manifest}:2: contextual-asr sample 'bad': 'biasing_words' must be a list of strings, got {words!r}; {SKIP}"
    )
    skipped = _batches(manifest, "skip", check)
    assert [entry.key for entry in skipped.dataset.entries] == ["u0", "u1", "u2"]


def _spec_file(tmp_path, **data) -> str:
    spec = toy_spec(data={"num_workers": 0, "batch_size": 2, **data}, train={"max_steps": 1})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_slam_train_stops_before_training_with_one_line_naming_manifest_line_and_field(tmp_path, capsys):
    manifest = _manifest(tmp_path, {"target": 5})
    spec = _spec_file(tmp_path, train_manifest=str(manifest))
    assert main(["train", spec, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"slam: error: {manifest}:2: asr sample 'bad': 'target' must be a string (the transcript), got int 5; {SKIP}"
    ]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_slam_infer_writes_a_line_per_sample_and_slam_eval_counts_the_skipped(tmp_path, capsys):
    manifest = _manifest(tmp_path, {"target": 5}, name="test.jsonl")
    spec = _spec_file(tmp_path, test_manifest=str(manifest), bad_samples="skip")
    hyps = tmp_path / "hyps.jsonl"
    assert main(["infer", spec, "--output", str(hyps)]) == 0
    records = [json.loads(line) for line in hyps.read_text().splitlines()]
    assert [r["key"] for r in records] == ["u0", "bad", "u1", "u2"]
    assert records[1] == {
        "key": "bad",
        "error": f"{manifest}:2: asr sample 'bad': 'target' must be a string (the transcript), got int 5",
    }
    assert all("hypothesis" in r and "error" not in r for i, r in enumerate(records) if i != 1)
    capsys.readouterr()
    assert main(["eval", str(hyps), "--metrics", "wer", "--output", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "skipped: 1" and out[0].startswith("wer: ")
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["count"] == 3 and report["skipped"] == 1
    # the skipped sample is left out of the score: the same as scoring the other three alone
    hyps.write_text("".join(json.dumps(r) + "\n" for i, r in enumerate(records) if i != 1))
    assert main(["eval", str(hyps), "--metrics", "wer", "--output", str(tmp_path / "m3.json")]) == 0
    assert json.loads((tmp_path / "m3.json").read_text())["metrics"] == report["metrics"]


def test_slam_infer_names_why_a_sample_skipped_while_loading_was_skipped(tmp_path, capsys):
    # NaN samples pass the header check at indexing; the preprocessor refuses them when the batch is loaded
    manifest = _manifest(tmp_path, {"target": "fine"}, name="test.jsonl")
    sf.write(tmp_path / "bad.wav", np.full(3200, np.nan, np.float32), 16000, subtype="FLOAT")
    spec = _spec_file(tmp_path, test_manifest=str(manifest), bad_samples="skip")
    hyps = tmp_path / "hyps.jsonl"
    assert main(["infer", spec, "--output", str(hyps)]) == 0
    records = [json.loads(line) for line in hyps.read_text().splitlines()]
    assert [r["key"] for r in records] == ["u0", "bad", "u1", "u2"]
    reason = f"{manifest}:2: sample 'bad': {tmp_path / 'bad.wav'}: audio: audio contains NaN or infinite samples"
    assert records[1] == {"key": "bad", "error": reason}
