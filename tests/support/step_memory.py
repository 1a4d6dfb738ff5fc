"""The measured peak memory of one real CPU training step, in a fresh process: what ``slam inspect``'s
estimate is checked against.

``python -m tests.support.step_memory SPEC_JSON BATCH SECONDS TEXT_TOKENS`` prints
``{"baseline": bytes, "built_peak": bytes, "peak": bytes, "weights": bytes}``: the process's RSS once the
model, the batch and the engine are built (every import done, every weight allocated), its peak RSS
right after that peak was reset (Linux's ``/proc/self/clear_refs``, so what building touched and freed
does not count), its peak RSS after one optimizer step, and the bytes of the model's parameters and
buffers. ``peak - baseline`` is the step's memory when ``peak > built_peak``.

The process runs with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB: every large block is then
mapped on its own and unmapped when freed, so the peak RSS follows the peak of live tensor bytes. With
glibc's default (a threshold that grows as blocks are freed) freed activations stay in the heap and the
peak RSS of a step is about 1.7x its live bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def measured_step(spec: dict[str, Any], batch: int, seconds: float, text_tokens: int) -> dict[str, int]:
    """Run :func:`main` in a fresh Python process and return its ``{"baseline", "peak", "weights"}`` bytes."""
    command = [sys.executable, "-m", "tests.support.step_memory", json.dumps(spec), str(batch), str(seconds)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(64 * 1024), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*command, str(text_tokens)], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the measured step failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss() -> int:
    """The process's resident high-water mark (``VmHWM``), which :func:`_reset_peak_rss` lowers to now."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # "5": reset the peak RSS to the current RSS


def _rss() -> int:
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE")


def main(spec_json: str, batch: str, seconds: str, text_tokens: str) -> None:
    import torch

    from slam_core.model import build_model
    from slam_core.runtime.train.distributed import Context
    from slam_core.runtime.train.probe import fixed_batch, train_engine, train_step
    from slam_core.spec import validate_spec

    spec = validate_spec(json.loads(spec_json))
    model = build_model(spec)
    inputs, text = fixed_batch(model, int(batch), float(seconds), int(text_tokens))
    engine = train_engine(model, spec, Context(0, 0, 1, torch.device("cpu"), owns_group=False), 1)
    weights = sum(t.untyped_storage().nbytes() for t in {*model.parameters(), *model.buffers()})
    _reset_peak_rss()
    baseline, built_peak = _rss(), _peak_rss()
    train_step(engine, inputs, text)
    print(json.dumps({"baseline": baseline, "built_peak": built_peak, "peak": _peak_rss(), "weights": weights}))


if __name__ == "__main__":
    main(*sys.argv[1:])
