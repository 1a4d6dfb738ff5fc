"""Checkpoints: their contents, atomic publication, retention (last k + best), exact resume, clear errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from support.synthetic import toy_spec, train_synthetic

from slam_core.model import build_model
from slam_core.runtime.train import CheckpointError, checkpoint, rng
from slam_core.spec import validate_spec

RESUME_SPEC = toy_spec(
    peft={"dropout": 0.3},  # dropout draws random numbers: resuming must restore the generators
    train={
        "epochs": 2,
        "grad_accum": 2,
        "save_every_steps": 2,
        "keep_last": None,
        "dtype": "bf16",
        "log_every_steps": 1,
    },
)
DATA = {"batches": 6, "batch_size": 2}  # 3 steps per epoch


class Crash(Exception):
    pass


def crash_after(step: int):
    def on_step(info):
        if info.step == step:
            raise Crash

    return on_step


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    return train_synthetic(RESUME_SPEC, run, **DATA)


def test_a_checkpoint_holds_weights_adapter_optimizer_schedule_rng_and_data(uninterrupted):
    path = uninterrupted.run_dir / "checkpoints" / "step-00000006"
    assert uninterrupted.last_checkpoint == path
    model = uninterrupted.model
    weights = load_file(path / "trainable.safetensors")
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert sorted(weights) == sorted(trainable)
    for name, value in weights.items():
        assert torch.equal(value, trainable[name].detach())

    # the adapter folder is peft's own, loadable by the LoRA method into a fresh model
    fresh = build_model(validate_spec(toy_spec() | {"peft": None}))
    loaded = model.peft.load(fresh.llm.model, path / "adapter")
    for name, param in loaded.named_parameters():
        if "lora_" in name:
            assert torch.equal(param, weights[f"llm.model.{name}"]), name

    state = json.loads((path / "state.json").read_text())
    assert state | {"metrics": None} == {
        "step": 6,
        "epoch": 1,
        "epoch_done": False,
        "engine": "single",
        "world_size": 1,
        "metrics": None,
        "trainable": {n: list(p.shape) for n, p in trainable.items()},
    }
    optimizer = torch.load(path / "optimizer.pt", weights_only=True)
    assert set(optimizer["state"]) == set(trainable), "the optimizer state is keyed by parameter name"
    trainer = torch.load(path / "trainer.pt", weights_only=True)
    assert trainer["scheduler"]["last_epoch"] == 6
    own = torch.load(path / "rank-00000.pt", weights_only=True)
    assert set(own["rng"]) == {"python", "numpy", "torch", "cuda"}
    assert own["data"] == {"epoch": 1, "position": 6}, "saved at step 6, before the loop saw the epoch end"
    middle = torch.load(path.with_name("step-00000002") / "rank-00000.pt", weights_only=True)
    assert middle["data"] == {"epoch": 0, "position": 4}, "mid-epoch: 2 steps of 2 micro-batches consumed"
    assert not list(path.parent.glob(".tmp-*")), "no temporary folder left behind"


def test_resuming_after_a_crash_reaches_the_same_weights_bit_for_bit(tmp_path, uninterrupted):
    with pytest.raises(Crash):
        train_synthetic(RESUME_SPEC, tmp_path, **DATA, on_step=crash_after(3))  # checkpoint at step 2, mid-epoch 0
    resumed = train_synthetic(RESUME_SPEC, tmp_path, **DATA)
    assert resumed.resumed_from.name == "step-00000002"
    assert resumed.losses == {s: uninterrupted.losses[s] for s in (3, 4, 5, 6)}
    expected = load_file(uninterrupted.last_checkpoint / "trainable.safetensors")
    got = load_file(resumed.last_checkpoint / "trainable.safetensors")
    assert all(torch.equal(got[name], expected[name]) for name in expected)
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history if r["split"] == "train"] == list(range(1, 7)), "no step logged twice"


def test_without_restoring_the_rng_a_resumed_run_differs(tmp_path, uninterrupted, monkeypatch):
    with pytest.raises(Crash):
        train_synthetic(RESUME_SPEC, tmp_path, **DATA, on_step=crash_after(3))
    monkeypatch.setattr(rng, "restore", lambda state: None)
    resumed = train_synthetic(RESUME_SPEC, tmp_path, **DATA)
    assert resumed.losses[3] != uninterrupted.losses[3], "dropout masks differ, so the RNG restore is what matters"


def test_keep_last_prunes_all_but_the_last_k_and_the_best(tmp_path):
    spec = toy_spec(
        train={
            "epochs": 5,
            "save_every_steps": 1,
            "eval_every_steps": 1,
            "keep_last": 2,
            "best_metric": "loss",
            "best_mode": "max",  # the worst loss is the "best": the first validation
        }
    )
    result = train_synthetic(spec, tmp_path, batches=1, batch_size=2, valid_batches=1)
    directory = tmp_path / "checkpoints"
    assert sorted(p.name for p in directory.glob("step-*")) == ["step-00000001", "step-00000004", "step-00000005"]
    best = json.loads((directory / "best.json").read_text())
    assert best["checkpoint"] == "step-00000001" and result.best_checkpoint == directory / "step-00000001"
    assert best["value"] == max(v["loss"] for v in result.validations)


def test_an_improving_validation_always_saves_a_checkpoint(tmp_path):
    spec = toy_spec(train={"epochs": 4, "eval_every_steps": 1, "save_every_steps": 100, "keep_last": 1})
    result = train_synthetic(spec, tmp_path, batches=1, batch_size=2, valid_batches=1, shuffle=False)
    best_step = min(result.validations, key=lambda v: v["loss"])["step"]
    assert result.best_checkpoint.name == f"step-{best_step:08d}"
    assert json.loads((result.best_checkpoint / "state.json").read_text())["metrics"]["loss"] == pytest.approx(
        min(v["loss"] for v in result.validations)
    )


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    spec = toy_spec(train={"epochs": 2, "save_every_steps": 1})
    real_publish = checkpoint.publish_dir

    def failing_publish(temporary, final):
        if final.name == "step-00000002":
            raise OSError("disk full")
        real_publish(temporary, final)

    monkeypatch.setattr(checkpoint, "publish_dir", failing_publish)
    with pytest.raises(CheckpointError, match="step-00000002: cannot write the checkpoint: disk full"):
        train_synthetic(spec, tmp_path, batches=1, batch_size=2)
    directory = tmp_path / "checkpoints"
    assert sorted(p.name for p in directory.iterdir() if p.is_dir()) == ["step-00000001"]
    monkeypatch.setattr(checkpoint, "publish_dir", real_publish)
    resumed = train_synthetic(spec, tmp_path, batches=1, batch_size=2)
    assert resumed.resumed_from.name == "step-00000001" and resumed.step == 2


@pytest.fixture
def one_checkpoint(tmp_path):
    spec = toy_spec(train={"epochs": 1})
    result = train_synthetic(spec, tmp_path / "run", batches=1, batch_size=2)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    return spec, copy, copy / "checkpoints" / result.last_checkpoint.name


def test_a_corrupt_weights_file_is_named(one_checkpoint):
    spec, run, path = one_checkpoint
    (path / "trainable.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(CheckpointError, match=r"trainable\.safetensors: cannot read the trainable weights"):
        train_synthetic(spec, run, batches=1, batch_size=2)


def test_a_corrupt_optimizer_file_is_named(one_checkpoint):
    spec, run, path = one_checkpoint
    data = (path / "optimizer.pt").read_bytes()
    (path / "optimizer.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"optimizer\.pt: cannot read the optimizer state"):
        train_synthetic(spec, run, batches=1, batch_size=2)


def test_a_pickle_that_runs_code_is_refused(one_checkpoint):
    spec, run, path = one_checkpoint
    torch.save({"scheduler": shutil.rmtree}, path / "trainer.pt")  # a global weights_only must not import
    with pytest.raises(CheckpointError, match=r"trainer\.pt: cannot read the schedule"):
        train_synthetic(spec, run, batches=1, batch_size=2)


def test_a_checkpoint_of_another_model_shape_is_refused(one_checkpoint):
    _, run, path = one_checkpoint
    other = toy_spec(train={"epochs": 1}, peft={"r": 8})
    with pytest.raises(
        CheckpointError,
        match=r"trainable\.safetensors: does not match .* 16 tensors have another shape, "
        r"e\.g\. llm\.model\.\S+ has shape \(4, 32\), the model's is \(8, 32\)",
    ):
        train_synthetic(other, run, batches=1, batch_size=2, resume=path)


def test_a_missing_file_and_a_foreign_engine_are_refused(one_checkpoint):
    spec, run, path = one_checkpoint
    state = json.loads((path / "state.json").read_text())
    (path / "state.json").write_text(json.dumps(state | {"engine": "deepspeed"}))
    with pytest.raises(CheckpointError, match=r"state\.json: written by engine 'deepspeed'"):
        train_synthetic(spec, run, batches=1, batch_size=2)
    (path / "state.json").write_text(json.dumps(state))
    (path / "rank-00000.pt").unlink()
    with pytest.raises(CheckpointError, match=r"rank-00000\.pt: missing"):
        train_synthetic(spec, run, batches=1, batch_size=2)


def test_a_fresh_start_over_existing_checkpoints_is_refused(one_checkpoint):
    spec, run, _ = one_checkpoint
    refusal = r"holds checkpoints of an earlier run; resume it \(drop --fresh; resume=True in Python\)"
    with pytest.raises(CheckpointError, match=refusal):
        train_synthetic(spec, run, batches=1, batch_size=2, resume=False)


def test_resuming_a_finished_run_does_nothing(one_checkpoint):
    spec, run, path = one_checkpoint
    before = sorted(p.name for p in path.parent.iterdir())
    result = train_synthetic(spec, run, batches=1, batch_size=2)
    assert result.losses == {} and result.resumed_from == path and result.step == 1
    assert sorted(p.name for p in path.parent.iterdir()) == before
