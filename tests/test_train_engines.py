"""Every engine on 2 CPU processes (gloo, torchrun) against one process on the same global batches.

Tolerances, relative, on each step's train loss and the validation loss: DDP 1e-6; FSDP2 and
ZeRO 1–3 1e-5 (their reductions run in another order). Final trainable weights: 1e-5 absolute.
Each engine's run is then resumed from its step-2 checkpoint and must end bit for bit where
the uninterrupted run ended.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from support import subprocess_env
from support.synthetic import exact_match, toy_spec, train_synthetic

from slam_core.runtime.train.distributed import free_port

pytestmark = pytest.mark.slow

ENGINES = {
    "ddp": ({"engine": "ddp"}, 1e-6),
    "fsdp2": ({"engine": "fsdp2"}, 1e-5),
    "zero1": ({"engine": "deepspeed", "deepspeed_stage": 1}, 1e-5),
    "zero2": ({"engine": "deepspeed", "deepspeed_stage": 2}, 1e-5),
    "zero3": ({"engine": "deepspeed", "deepspeed_stage": 3}, 1e-5),
}
TRAIN = {"epochs": 2, "grad_accum": 2, "save_every_steps": 2, "keep_last": None, "eval_every_steps": 2}
DATA = ["--batches", "4", "--batch-size", "4", "--valid-batches", "1", "--score"]  # 2 samples per rank
FINAL = "checkpoints/step-00000004"
# DeepSpeed JIT-compiles a CPU communication op on first use; a cache per virtual environment keeps
# another environment's build of it from being swapped in under a running test
EXTENSIONS = str(
    Path.home() / ".cache" / "torch_extensions" / f"venv-{hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]}"
)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    run = tmp_path_factory.mktemp("single")
    result = train_synthetic(toy_spec(train=TRAIN), run, batches=4, batch_size=4, valid_batches=1, scorer=exact_match)
    return {
        "losses": result.losses,
        "validations": result.validations,
        "weights": load_file(run / FINAL / "trainable.safetensors"),
    }


def torchrun(spec: dict, run_dir) -> None:
    spec_path = run_dir.parent / f"{run_dir.name}.json"
    spec_path.write_text(json.dumps(spec))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
        "-m", "support.synthetic", str(spec_path), str(run_dir), *DATA,
    ]  # fmt: skip
    env = subprocess_env(
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        DS_ACCELERATOR="cpu",
        PYTHONWARNINGS="ignore",
        TORCH_EXTENSIONS_DIR=EXTENSIONS,
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-12000:]


@pytest.mark.parametrize("name", ENGINES)
def test_engine_agrees_with_one_process_and_resumes_exactly(name, single, tmp_path):
    overrides, tolerance = ENGINES[name]
    if overrides["engine"] == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        pytest.skip("DeepSpeed is not installed (DS_BUILD_OPS=0 pip install -c constraints.txt deepspeed)")
    spec = toy_spec(train=TRAIN | overrides)
    run = tmp_path / "run"
    torchrun(spec, run)
    result = json.loads((run / "result.json").read_text())
    losses = {int(step): loss for step, loss in result["losses"].items()}
    assert sorted(losses) == [1, 2, 3, 4]
    for step, loss in single["losses"].items():
        assert losses[step] == pytest.approx(loss, rel=tolerance), f"step {step}"
    assert [v["step"] for v in result["validations"]] == [2, 4]
    for got, want in zip(result["validations"], single["validations"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=tolerance)
        assert got["exact_match"] == want["exact_match"]
    weights = load_file(run / FINAL / "trainable.safetensors")
    assert sorted(weights) == sorted(single["weights"]), "the same trainable parameters, and only those"
    for key, value in single["weights"].items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=1e-5, msg=key)
    adapter = load_file(run / FINAL / "adapter" / "adapter_model.safetensors")
    lora = {k: v for k, v in weights.items() if "lora_" in k}
    assert len(adapter) == len(lora) > 0, "the adapter holds whole LoRA tensors, even from sharded parameters"
    for key, value in lora.items():
        assert torch.equal(adapter[key.removeprefix("llm.model.").replace(".default.", ".")], value), key
    state = json.loads((run / FINAL / "state.json").read_text())
    assert state["world_size"] == 2 and state["engine"] == overrides["engine"]
    assert {p.name for p in (run / FINAL).glob("rank-*.pt")} == {"rank-00000.pt", "rank-00001.pt"}

    resumed = tmp_path / "resumed"
    shutil.copytree(run, resumed)
    for later in ("step-00000003", "step-00000004"):
        shutil.rmtree(resumed / "checkpoints" / later, ignore_errors=True)
    (resumed / "result.json").unlink()
    torchrun(spec, resumed)
    again = json.loads((resumed / "result.json").read_text())
    assert again["resumed_from"].endswith("step-00000002")
    assert again["losses"] == {s: result["losses"][s] for s in ("3", "4")}
    final = load_file(resumed / FINAL / "trainable.safetensors")
    assert all(torch.equal(final[key], weights[key]) for key in weights), "resumed bit for bit"
