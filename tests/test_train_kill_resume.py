"""A training process killed with SIGKILL mid-epoch resumes to bit-for-bit the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file
from support import subprocess_env
from support.synthetic import toy_spec

SPEC = toy_spec(
    peft={"dropout": 0.2},  # dropout on: the resumed run must restore the RNG states
    train={"epochs": 2, "grad_accum": 2, "save_every_steps": 3, "keep_last": None, "dtype": "bf16"},
)
STEPS = 12  # 2 epochs × 12 batches / 2 micro-batches per step
KILL_AFTER = "step-00000003"


def command(spec_path, run_dir, delay: float) -> list[str]:
    return [
        sys.executable, "-m", "support.synthetic", str(spec_path), str(run_dir),
        "--batches", "12", "--batch-size", "2", "--step-delay", str(delay),
    ]  # fmt: skip


def environment() -> dict[str, str]:
    return subprocess_env(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(SPEC))
    env = environment()
    reference, victim = tmp_path / "reference", tmp_path / "victim"
    subprocess.run(command(spec_path, reference, 0.0), env=env, check=True, capture_output=True)

    process = subprocess.Popen(
        command(spec_path, victim, 0.25), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (victim / "checkpoints" / KILL_AFTER).is_dir():
        assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (victim / "result.json").exists(), "killed before the end"
    saved = sorted(p.name for p in (victim / "checkpoints").glob("step-*"))
    assert saved and saved[-1] < f"step-{STEPS:08d}"

    subprocess.run(command(spec_path, victim, 0.0), env=env, check=True, capture_output=True)
    expected = json.loads((reference / "result.json").read_text())
    resumed = json.loads((victim / "result.json").read_text())
    resumed_at = int(resumed["resumed_from"].rsplit("-", 1)[1])
    assert 3 <= resumed_at < 6, "resumed mid-epoch 0 (steps 1-6), so the epoch boundary comes after the resume"
    assert resumed["step"] == expected["step"] == STEPS
    assert resumed["losses"] == {s: expected["losses"][s] for s in map(str, range(resumed_at + 1, STEPS + 1))}

    final = f"checkpoints/step-{STEPS:08d}/trainable.safetensors"
    want, got = load_file(reference / final), load_file(victim / final)
    assert sorted(got) == sorted(want)
    different = [name for name in want if not torch.equal(got[name], want[name])]
    assert not different, f"trainable tensors differ after the resume: {different}"
