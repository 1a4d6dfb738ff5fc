"""The step benchmarks run: bench/fixed_positions.py and bench/gpu.py in their tiny dry modes (no timing asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
FAST = [
    "--batch",
    "2",
    "--seconds",
    "2",
    "--target-tokens",
    "8",
    "--new-tokens",
    "4",
    "--warmup",
    "0",
    "--repeats",
    "1",
]


def run(script: str, *args: str, gpus: str | None = None) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpus
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def rows(output: str) -> dict[str, list[str]]:
    """The table's rows by their first cell (cells are separated by two or more spaces)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.replace(" ", "")) == {"-"})
    return {
        cells[0]: cells[1:]
        for cells in (re.split(r"\s{2,}", line.strip()) for line in lines[start + 1 :])
        if len(cells) > 1
    }


def test_gpu_bench_without_a_gpu_says_so_and_exits_0():
    output = run("gpu.py", gpus="")
    assert output.strip() == (
        "no GPU present: bench/gpu.py measures on CUDA devices (bench/gpu.py --device cpu --tiny is a dry run)"
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["single", "fsdp2"])
def test_gpu_bench_dry_run_trains_with_and_without_checkpointing_and_decodes(engine):
    output = run("gpu.py", "--device", "cpu", "--tiny", "--engine", engine, *FAST)
    table = rows(output)
    wanted = [f"train {engine} x1", f"train {engine} x1, act. ckpt"] + ["greedy decode 4 tokens"] * (engine == "single")
    assert list(table) == wanted
    # 2 clips padded to 30 s: 300 audio positions each (k=5), plus prompt and the 8 target tokens
    for name in wanted[:2]:
        ms, positions_per_s, targets_per_s, gflop = map(float, table[name][:4])
        assert positions_per_s * ms / 1000 == pytest.approx(2 * (300 + 8) + 2 * prompt_tokens(), rel=0.01)
        assert targets_per_s * ms / 1000 == pytest.approx(16, rel=0.01)
        assert gflop > 0
    if engine == "single":
        ms, rtf = float(table[wanted[2]][0]), float(table[wanted[2]][5])
        assert rtf == pytest.approx(ms / 1000 / 4.0, rel=0.01)  # wall time over 2 x 2 s of audio


def prompt_tokens() -> int:
    """Tokens of the gpu bench's prompt under the toy LLM's plain template and byte tokenizer."""
    return len(b"Transcribe speech to text.")


@pytest.mark.slow
def test_fixed_positions_tiny_run_prints_every_measure_at_300_positions():
    output = run("fixed_positions.py", "--tiny", "--pad-30s")
    assert "(300 audio positions each, padded to 30 s)" in output
    table = rows(output)
    assert list(table) == ["train step", "train step, checkpointed", "greedy 30 tokens", "beam 4, 30 tokens"]
    assert all(float(cells[0]) > 0 and float(cells[-1]) > 0 for cells in table.values())


@pytest.mark.slow
def test_fixed_positions_profile_prints_the_top_operators_of_the_train_step():
    output = run("fixed_positions.py", "--tiny", "--profile", "train step", "--rows", "5")
    header = next(line for line in output.splitlines() if line.lstrip().startswith("Name"))
    assert "Self CPU" in header
    lines = output.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("---")]
    operators = [line.split()[0] for line in lines[rules[1] + 1 : rules[2]]]
    assert len(operators) == 5 and any(op in operators for op in ("aten::mm", "aten::addmm", "aten::bmm"))
    assert re.search(r"^train step: \d+ ms a repetition under the profiler \(1 profiled\)$", output, re.M)
