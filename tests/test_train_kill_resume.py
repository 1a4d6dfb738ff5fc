"""A training process killed with SIGKILL mid-epoch resumes to bit-for-bit the weights of an uninterrupted run."""

from __future__ import annotations

import json
import sys

from support.kill_resume import different_tensors, reference_and_resumed
from support.synthetic import toy_spec

SPEC = toy_spec(
    peft={"dropout": 0.2},  # dropout on: the resumed run must restore the RNG states
    train={"epochs": 2, "grad_accum": 2, "save_every_steps": 3, "keep_last": None, "dtype": "bf16"},
)
STEPS = 12  # 2 epochs × 12 batches / 2 micro-batches per step
KILL_AFTER = "step-00000003"


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(SPEC))

    def command(run_dir, delay: float) -> list[str]:
        return [
            sys.executable, "-m", "support.synthetic", str(spec_path), str(run_dir),
            "--batches", "12", "--batch-size", "2", "--step-delay", str(delay),
        ]  # fmt: skip

    reference, victim = tmp_path / "reference", tmp_path / "victim"
    expected, resumed = reference_and_resumed(command, reference, victim, KILL_AFTER)
    resumed_at = int(resumed["resumed_from"].rsplit("-", 1)[1])
    assert 3 <= resumed_at < 6, "resumed mid-epoch 0 (steps 1-6), so the epoch boundary comes after the resume"
    assert resumed["step"] == expected["step"] == STEPS
    assert resumed["losses"] == {s: expected["losses"][s] for s in map(str, range(resumed_at + 1, STEPS + 1))}
    assert not different_tensors(reference, victim, STEPS), "trainable tensors differ after the resume"
