"""Faults a real user meets: a second run on the same folder, kill -9 inside a save or a prune, the
final validation, a finished run run again, a full disk, a read-only folder, a file where a folder belongs."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import subprocess_env
from support.synthetic import toy_spec, train_synthetic

from slam_core.errors import CheckpointError, RunFolderError
from slam_core.runtime.checkpoints import layout
from slam_core.runtime.train import checkpoint

KILL_SPEC = toy_spec(
    peft={"dropout": 0.2},  # dropout on: a resume must restore the RNG states
    train={"epochs": 1, "save_every_steps": 1, "keep_last": 1, "dtype": "bf16"},
)
STEPS = 6  # 6 batches, one step each


def synthetic_command(spec_path: Path, run_dir: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "support.synthetic", str(spec_path), str(run_dir), "--batches", str(STEPS),
            "--batch-size", "2", *options]  # fmt: skip


def environment() -> dict[str, str]:
    return subprocess_env(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def start_hanging(spec: dict, run_dir: Path, tmp_path: Path, *options: str) -> subprocess.Popen:
    """A training process, returned once it prints ``hanging`` (inside the window ``options`` name)."""
    spec_path = tmp_path / f"spec-{run_dir.name}.json"
    spec_path.write_text(json.dumps(spec))
    process = subprocess.Popen(
        synthetic_command(spec_path, run_dir, *options),
        env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline().strip()
    if line != "hanging":
        process.kill()
        raise AssertionError(f"the run did not reach its window: {line!r} {process.stderr.read()[-2000:]}")
    return process


def folder_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by relative path, with its content's hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The final trainable weights of the kill spec, trained without interruption."""
    run = tmp_path_factory.mktemp("reference")
    result = train_synthetic(KILL_SPEC, run, batches=STEPS, batch_size=2)
    return load_file(result.last_checkpoint / layout.TRAINABLE_FILE)


# 1. one run per folder -----------------------------------------------------------------------------


def test_a_second_run_on_a_busy_folder_is_refused_and_changes_nothing(tmp_path):
    first = toy_spec(train={"epochs": 1, "save_every_steps": 1, "lr": 1e-3})
    holder = start_hanging(first, tmp_path / "run", tmp_path, "--hang-in", "save", "--hang-at-step", "2")
    try:
        before = folder_digest(tmp_path / "run")
        second = toy_spec(train={"epochs": 1, "save_every_steps": 1, "lr": 5e-3})
        with pytest.raises(RunFolderError) as caught:
            train_synthetic(second, tmp_path / "run", batches=STEPS, batch_size=2)
        assert f"is in use by slam train (pid {holder.pid} on host {socket.gethostname()}" in str(caught.value)
        assert folder_digest(tmp_path / "run") == before
        assert json.loads((tmp_path / "run" / "spec.json").read_text())["train"]["lr"] == 1e-3
    finally:
        holder.kill()
        holder.wait()


# 2. kill -9 inside a save and inside a prune --------------------------------------------------------


@pytest.mark.parametrize("window", ["save", "prune"])
def test_kill_9_inside_a_save_or_a_prune_then_resume_is_bit_exact(tmp_path, reference, window):
    run = tmp_path / "run"
    victim = start_hanging(KILL_SPEC, run, tmp_path, "--hang-in", window, "--hang-at-step", "3")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    left = sorted(p.name for p in (run / "checkpoints").iterdir())
    stray = {"save": ".tmp-step-00000003", "prune": ".deleted-step-00000002"}[window]
    assert stray in left, left  # killed inside the window
    assert all((run / "checkpoints" / name / layout.STATE_FILE).is_file() for name in left if name.startswith("step-"))

    result = train_synthetic(KILL_SPEC, run, batches=STEPS, batch_size=2)
    assert result.resumed_from.name == {"save": "step-00000002", "prune": "step-00000003"}[window]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best.json", f"step-{STEPS:08d}"]  # the sweep cleared what the kill left
    final = load_file(result.last_checkpoint / layout.TRAINABLE_FILE)
    assert sorted(final) == sorted(reference)
    assert [n for n in reference if not torch.equal(final[n], reference[n])] == []


def test_best_json_never_names_a_pruned_checkpoint(tmp_path, monkeypatch):
    spec = toy_spec(
        train={"epochs": 4, "save_every_steps": 1, "eval_every_steps": 1, "keep_last": 1, "best_metric": "loss"}
    )
    seen = []
    real_remove = layout.remove

    def remove(folder):
        record = json.loads((folder.parent / layout.BEST_FILE).read_text())
        seen.append((folder.name, record["checkpoint"]))
        assert record["checkpoint"] != folder.name, "best.json still names the checkpoint being deleted"
        real_remove(folder)

    monkeypatch.setattr(layout, "remove", remove)
    train_synthetic(spec, tmp_path, batches=1, batch_size=2, valid_batches=1, shuffle=False)
    assert seen, "something was pruned"


# 4. the final validation counts; a finished run run again changes nothing ---------------------------


def test_the_final_validation_counts_for_best_and_a_rerun_changes_nothing(tmp_path):
    # saved at steps 2 and 4; validated at 3 (an improvement, so saved) and, after the save, at 4
    spec = toy_spec(
        train={"epochs": 1, "save_every_steps": 2, "eval_every_steps": 3, "keep_last": None, "best_metric": "loss"}
    )
    options = {"batches": 4, "batch_size": 2, "valid_batches": 1, "shuffle": False}
    result = train_synthetic(spec, tmp_path, **options)
    assert [v["step"] for v in result.validations] == [3, 4]
    final_state = layout.read_state(tmp_path / "checkpoints" / "step-00000004")
    assert final_state["metrics"]["loss"] == result.validations[-1]["loss"]
    best_step = min(result.validations, key=lambda v: v["loss"])["step"]
    assert result.best_checkpoint.name == f"step-{best_step:08d}"
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["checkpoint"] == f"step-{best_step:08d}"

    before = folder_digest(tmp_path)
    again = train_synthetic(spec, tmp_path, **options)
    assert again.validations == [] and again.step == 4
    assert folder_digest(tmp_path) == before


# 5. full disk, read-only folder, a file where a folder belongs --------------------------------------


def fail_second_save(monkeypatch, error: BaseException):
    real = checkpoint.torch.save

    def save(obj, file, *args, **kwargs):
        if ".tmp-step-00000002" in str(file):
            Path(file).write_bytes(b"partial")
            raise error
        return real(obj, file, *args, **kwargs)

    monkeypatch.setattr(checkpoint.torch, "save", save)


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space is left on its device: free space there"),
        (OSError(errno.EROFS, "Read-only file system"), "its file system is read-only: choose a writable folder"),
    ],
)
def test_a_failed_save_is_one_error_removes_its_temporary_folder_and_keeps_the_last(tmp_path, monkeypatch, error, fix):
    spec = toy_spec(train={"epochs": 2, "save_every_steps": 1})
    fail_second_save(monkeypatch, error)
    with pytest.raises(CheckpointError) as caught:
        train_synthetic(spec, tmp_path, batches=1, batch_size=2)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'checkpoints' / 'step-00000002'}: cannot write the checkpoint: {fix}")
    assert message.endswith("(the last complete checkpoint, step-00000001, is untouched)")
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best.json", "step-00000001"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 3 MiB tmpfs (only where this process may mount one)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root); the injected-error tests cover the same paths")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_really_full_disk_keeps_the_last_checkpoint(small_tmpfs):
    # a bigger encoder: its checkpoints with the optimizer state fill 3 MiB after a few steps
    spec = toy_spec(train={"epochs": 40, "save_every_steps": 1, "keep_last": None})
    spec["encoder"]["shape"] |= {"hidden_size": 128}
    with pytest.raises((CheckpointError, RunFolderError)) as caught:
        train_synthetic(spec, small_tmpfs / "run", batches=1, batch_size=2)
    assert "no space is left on its device" in str(caught.value)
    left = sorted(p.name for p in (small_tmpfs / "run" / "checkpoints").iterdir() if p.is_dir())
    assert left and all(name.startswith("step-") for name in left), left
    last = small_tmpfs / "run" / "checkpoints" / left[-1]
    assert layout.read_state(last)["step"] == int(left[-1][5:])
    load_file(last / layout.TRAINABLE_FILE)  # complete and readable


def test_a_read_only_run_folder_is_one_error(small_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    spec = toy_spec(train={"epochs": 1})
    with pytest.raises(RunFolderError, match=r"tmpfs/run: cannot create the run folder: its file system is read-only"):
        train_synthetic(spec, small_tmpfs / "run", batches=1, batch_size=2)


def test_a_file_as_run_folder_is_one_error(tmp_path):
    spec = toy_spec(train={"epochs": 1})
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunFolderError, match=r"a-file: is a file, not a run folder"):
        train_synthetic(spec, tmp_path / "a-file", batches=1, batch_size=2)
