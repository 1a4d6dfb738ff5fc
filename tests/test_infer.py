"""`slam infer` and `slam eval`: decoding a manifest, loading trained weights, scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from slam_core.errors import CheckpointError
from slam_core.model import build_model
from slam_core.runtime.checkpoints.layout import resolve
from slam_core.runtime.infer.decode import decode
from slam_core.runtime.infer.evaluate import HypothesesError, evaluate, read_hypotheses
from slam_core.runtime.infer.weights import load_trained_weights
from slam_core.spec import validate_spec

TARGETS = {"a": "one two", "b": "three", "c": "four five six"}


def tiny_spec(manifest=None, **infer) -> dict:
    return {
        "encoder": {
            "type": "toy-encoder",
            "shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
        },
        "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 16},
        "llm": {
            "type": "toy-llm",
            "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 32},
        },
        "peft": {"type": "lora", "r": 2, "alpha": 4, "dropout": 0.0},
        "task": {"type": "asr"},
        "data": {"test_manifest": str(manifest) if manifest else None, "num_workers": 0},
        "infer": {"batch_size": 2, "max_new_tokens": 4, **infer},
    }


@pytest.fixture
def manifest(tmp_path):
    rows = []
    for index, (key, target) in enumerate(TARGETS.items()):
        audio = 0.1 * np.random.default_rng(index).standard_normal(1600 + 800 * index).astype("float32")
        soundfile.write(tmp_path / f"{key}.wav", audio, 16000)
        rows.append({"key": key, "source": f"{key}.wav", "target": target, "speaker": f"s{index}"})
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_decode_writes_one_record_per_sample_with_its_fields(tmp_path, manifest):
    spec = validate_spec(tiny_spec(manifest))
    output = decode(spec, tmp_path / "out" / "hyps.jsonl", device="cpu")
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted(r["key"] for r in records) == sorted(TARGETS)
    for record in records:
        assert record["target"] == TARGETS[record["key"]]
        assert record["speaker"].startswith("s") and "source" not in record
        assert isinstance(record["hypothesis"], str)
    assert not list((tmp_path / "out").glob(".tmp-*"))


def test_hypotheses_come_in_the_manifests_order_whatever_the_batching(tmp_path, manifest):
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(reversed(lines)) + "\n")  # longest first: bucketing reorders the batches
    spec = validate_spec(tiny_spec(manifest, batch_size=1))
    output = decode(spec, tmp_path / "hyps.jsonl", device="cpu")
    assert [json.loads(line)["key"] for line in output.read_text().splitlines()] == ["c", "b", "a"]


def test_decode_equals_generating_each_sample_with_the_model(tmp_path, manifest):
    """The batched decode gives the text the model generates for each sample alone."""
    from slam_core.runtime.data.audiofile import read_audio

    spec = validate_spec(tiny_spec(manifest))
    torch.manual_seed(0)  # decode builds from train.seed, as training does, whatever the caller's RNG state
    records = {
        json.loads(line)["key"]: json.loads(line)["hypothesis"]
        for line in decode(spec, tmp_path / "hyps.jsonl", device="cpu").read_text().splitlines()
    }
    torch.manual_seed(spec.train.seed)
    model = build_model(spec).eval()
    preprocess = model.encoder.preprocessor()
    for key in TARGETS:
        features = preprocess(read_audio(manifest.parent / f"{key}.wav"))[None]
        text = model.text_inputs([{"key": key}], with_targets=False)
        alone = model.generate(features, torch.tensor([features.shape[1]]), text, max_new_tokens=4)
        assert records[key] == model.task.postprocess(alone[0])


def make_checkpoint(folder, model, change, metrics=None):
    """A checkpoint folder with the model's trainable tensors (+ ``change``) and a state.json."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    trainable = {n: p.detach().clone() + change for n, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, folder / "trainable.safetensors")
    state = {"step": int(folder.name[5:]), "epoch": 0, "epoch_done": False, "engine": "single", "world_size": 1}
    (folder / "state.json").write_text(json.dumps(state | {"metrics": metrics}))
    return trainable


def test_trained_weights_round_trip_and_checkpoint_resolution(tmp_path):
    spec = validate_spec(tiny_spec())
    checkpoints = tmp_path / "run" / "checkpoints"
    trained = make_checkpoint(checkpoints / "step-00000004", build_model(spec), 0.5, {"wer": 0.5, "loss": 1.0})
    make_checkpoint(checkpoints / "step-00000002", build_model(spec), 0.25, {"wer": 0.25, "loss": 2.0})
    make_checkpoint(checkpoints / "step-00000003", build_model(spec), 0.75)  # not validated
    model = build_model(spec)
    used = load_trained_weights(model, tmp_path / "run")
    assert used.name == "step-00000004"  # no best.json: the latest
    for name, tensor in trained.items():
        assert torch.equal(model.state_dict()[name], tensor)
    # the best by the metric and mode the run's best.json records, found as training finds it
    (checkpoints / "best.json").write_text(json.dumps({"metric": "wer", "mode": "min", "checkpoint": "stale"}))
    assert resolve(tmp_path / "run").name == "step-00000002"
    (checkpoints / "best.json").write_text(json.dumps({"metric": "loss", "mode": "max", "checkpoint": None}))
    assert resolve(tmp_path / "run").name == "step-00000002"
    (checkpoints / "best.json").write_text(json.dumps({"metric": "loss", "mode": "min", "checkpoint": None}))
    assert resolve(tmp_path / "run").name == "step-00000004"
    assert resolve(checkpoints / "step-00000003").name == "step-00000003"  # a checkpoint folder itself


def test_a_checkpoint_of_another_model_is_refused_naming_the_file(tmp_path):
    from safetensors.torch import save_file

    spec = validate_spec(tiny_spec())
    folder = tmp_path / "ckpt"
    folder.mkdir()
    save_file({"projector.no_such.weight": torch.zeros(2)}, folder / "trainable.safetensors")
    unknown = r"trainable\.safetensors: does not match the model .*has 1 tensors this model does not have"
    with pytest.raises(CheckpointError, match=unknown):
        load_trained_weights(build_model(spec), folder)
    save_file({"projector.linear1.weight": torch.zeros(3, 3)}, folder / "trainable.safetensors")
    with pytest.raises(CheckpointError, match=r"another shape, e\.g\. projector\.linear1\.weight has shape \(3, 3\)"):
        load_trained_weights(build_model(spec), folder)
    (folder / "trainable.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read the trainable weights"):
        load_trained_weights(build_model(spec), folder)
    with pytest.raises(CheckpointError, match="neither a checkpoint folder"):
        resolve(tmp_path / "nothing")
    (tmp_path / "empty" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"empty/checkpoints: no checkpoint"):
        resolve(tmp_path / "empty")


def test_a_checkpoint_without_every_trainable_tensor_or_with_nan_is_refused(tmp_path):
    from safetensors.torch import save_file

    spec = validate_spec(tiny_spec())
    model = build_model(spec)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = sum(1 for _, p in model.named_parameters() if not p.requires_grad)
    folder = tmp_path / "ckpt"
    folder.mkdir()
    expected = f"it must hold the {len(trainable)} trainable tensors of the model (its {frozen} frozen tensors"
    projector_only = {n: t for n, t in trainable.items() if n.startswith("projector.")}
    for saved in ({}, projector_only):
        save_file(saved, folder / "trainable.safetensors")
        with pytest.raises(CheckpointError) as caught:
            load_trained_weights(build_model(spec), folder)
        missing = len(trainable) - len(saved)
        assert f"missing {missing} trainable tensors of this model" in str(caught.value)
        assert expected in str(caught.value)
    lora = sorted(n for n in trainable if "lora_B" in n)[0]
    save_file(trainable | {lora: torch.full_like(trainable[lora], float("nan"))}, folder / "trainable.safetensors")
    with pytest.raises(CheckpointError, match=rf"1 tensors hold NaN or infinite values, e\.g\. \['{lora}'\]"):
        load_trained_weights(build_model(spec), folder)
    save_file(trainable, folder / "trainable.safetensors")
    assert load_trained_weights(build_model(spec), folder) == folder


def test_an_output_that_is_a_folder_is_refused_before_decoding(tmp_path, manifest):
    from slam_core.errors import RunFolderError

    spec = validate_spec(tiny_spec(manifest))
    (tmp_path / "out").mkdir()
    with pytest.raises(RunFolderError, match=r"out: is a folder; name the hypotheses file to write"):
        decode(spec, tmp_path / "out", device="cpu")
    (tmp_path / "file").write_text("")
    with pytest.raises(RunFolderError, match=r"file/hyps\.jsonl: cannot be written: .*file is a file, not a folder"):
        decode(spec, tmp_path / "file" / "hyps.jsonl", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []


def write_hypotheses(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_evaluate_scores_wer_and_writes_json(tmp_path):
    path = write_hypotheses(
        tmp_path / "h.jsonl",
        [
            {"key": "a", "hypothesis": "the cat", "target": "the cat"},
            {"key": "b", "hypothesis": "a red hat", "target": "a big hat"},
        ],
    )
    report = evaluate(path, ["wer"], tmp_path / "metrics.json")
    assert report["metrics"]["wer"] == pytest.approx(1 / 5)  # one substitution in five reference words
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["wer"] == pytest.approx(0.2)


def test_an_infinite_rate_is_written_as_null(tmp_path):
    path = write_hypotheses(tmp_path / "h.jsonl", [{"key": "a", "hypothesis": "extra", "target": ""}])
    evaluate(path, ["wer"], tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["wer"] is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"key": "a", "hypothesis": "x"}\n', r"h\.jsonl:1: missing target"),
        ('\n{"key": "a"\n', r"h\.jsonl:2: not JSON"),
        ("", "no hypotheses to score"),
    ],
)
def test_unscorable_hypotheses_files_name_the_line(tmp_path, content, message):
    (tmp_path / "h.jsonl").write_text(content)
    with pytest.raises(HypothesesError, match=message):
        read_hypotheses(tmp_path / "h.jsonl")


def test_a_decoding_process_folds_the_adapter_in_where_the_method_can():
    from slam_core.runtime.infer.weights import ready_for_decoding

    model = build_model(validate_spec(tiny_spec()))
    ready = ready_for_decoding(model, "cpu")
    assert ready.peft is None and not ready.training
    assert not any("lora_" in name for name, _ in ready.llm.named_parameters())

    model = build_model(validate_spec(tiny_spec()))

    def cannot_merge(module):
        raise NotImplementedError("this method keeps its adapter apart")

    model.peft.merge = cannot_merge
    kept = ready_for_decoding(model, "cpu")
    assert kept.peft is not None and any("lora_" in name for name, _ in kept.llm.named_parameters())
