"""SIGKILL a training process once a given checkpoint is published, resume it, and compare with a run left alone.

Used by the kill-and-resume tests of the synthetic batches and of the data pipeline's sources; ``command(run_dir,
step_delay)`` is the ``python -m support.synthetic ...`` command line of one run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from support import subprocess_env

Command = Callable[[Path, float], list[str]]


def environment() -> dict[str, str]:
    return subprocess_env(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")


def kill_once_saved(command: Command, run_dir: Path, checkpoint: str, *, delay: float = 0.25) -> None:
    """Start a run slowed by ``delay`` s a step and SIGKILL it once ``checkpoint`` appears (before it ends)."""
    process = subprocess.Popen(
        command(run_dir, delay), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / checkpoint).is_dir():
        assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (run_dir / "result.json").exists(), "killed before the end"


def reference_and_resumed(
    command: Command, reference: Path, victim: Path, checkpoint: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``result.json`` of an uninterrupted run and of a run killed after ``checkpoint`` and run again."""
    subprocess.run(command(reference, 0.0), env=environment(), check=True, capture_output=True)
    kill_once_saved(command, victim, checkpoint)
    subprocess.run(command(victim, 0.0), env=environment(), check=True, capture_output=True)
    return json.loads((reference / "result.json").read_text()), json.loads((victim / "result.json").read_text())


def different_tensors(reference: Path, victim: Path, step: int) -> list[str]:
    """Names of the trainable tensors that differ between two runs' checkpoints of ``step`` (same names asserted)."""
    final = f"checkpoints/step-{step:08d}/trainable.safetensors"
    want, got = load_file(reference / final), load_file(victim / final)
    assert sorted(got) == sorted(want)
    return [name for name in want if not torch.equal(got[name], want[name])]
