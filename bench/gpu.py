"""Paper-scale training and decoding on GPU: Whisper-large-v3 shape -> linear projector -> 7B Llama shape + LoRA.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/gpu.py                 # one command, about 5-8 minutes
     HF_HUB_OFFLINE=1 .venv/bin/python bench/gpu.py --device cpu --tiny   # dry run of the same code, seconds

Builds the pipeline from the framework's own spec and components with random weights in bf16:
a frozen Whisper-large-v3-shaped encoder (1280 wide, 32 layers, 30 s windows), the linear
projector (k=5: 300 positions per clip), a frozen 7B Llama-shaped LLM (``toy-llm``: 4096 x 32
layers, 32 heads, 11008 intermediate, vocabulary 32000) and LoRA r=32 on q/k/v/o. It trains
with the framework's engine at batch 4 (targets of exactly ``--target-tokens`` tokens), with
and without activation checkpointing (the vicuna plugin's non-reentrant checkpointing of every
decoder layer), and reports training tokens/s (LLM input positions and target tokens), MFU
(the FLOPs one step executes, counted by ``torch.utils.flop_counter``, over the GPU's dense
bf16 peak) and peak memory; then batched greedy decoding of ``--new-tokens`` tokens per clip
and its real-time factor (wall time / seconds of audio). With more than one GPU it then trains
with ``train.engine: fsdp2`` across all of them under torchrun. Without a GPU it says so and
exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Dense bf16 tensor-core peak, FLOP/s, by a substring of the device name.
PEAK_BF16 = {"H200": 989.4e12, "H100": 989.4e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "4090": 165e12}
SPEC = {
    "encoder": {"type": "whisper", "size": "large-v3", "mode": "pad_to_30s", "dtype": "bf16"},
    "projector": {"type": "linear-projector", "k": 5, "hidden_dim": 2048},
    "llm": {
        "type": "toy-llm",
        "dtype": "bf16",
        "shape": {
            "hidden_size": 4096,
            "num_layers": 32,
            "num_heads": 32,
            "intermediate_size": 11008,
            "vocab_size": 32000,
            "max_position_embeddings": 4096,
        },
    },
    "peft": {
        "type": "lora",
        "r": 32,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    },
    "task": {"type": "asr", "prompt": "Transcribe speech to text."},
    "data": {"max_duration_s": 30.0},
    "train": {"dtype": "bf16", "lr": 1e-4, "warmup_steps": 1},
}
TINY = {
    "encoder": {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "intermediate_size": 128, "num_mel_bins": 128},
    "llm": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128, "vocab_size": 512},
}


def spec_for(args: argparse.Namespace, engine: str) -> dict:
    spec = json.loads(json.dumps(SPEC))
    spec["train"]["engine"] = engine
    if args.tiny:
        spec["encoder"]["shape"] = TINY["encoder"]
        spec["llm"]["shape"].update(TINY["llm"])
        spec["projector"]["hidden_dim"] = 64
    return spec


def step_flops(engine, batch, text) -> float:
    """FLOPs of one training step (forward, backward, optimizer), as executed."""
    import steps
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        steps.train_step(engine, batch, text)
    return float(counter.get_total_flops())


def train_rows(args: argparse.Namespace, engine_name: str) -> list[dict]:
    """Train at batch ``args.batch`` without and with activation checkpointing; one row each."""
    import steps
    import torch

    from slam_core.runtime.train.distributed import setup, teardown

    context = setup(engine_name)
    device = context.device if args.device == "cuda" else torch.device("cpu")
    torch.manual_seed(0)
    spec, model = steps.build(spec_for(args, engine_name), device)
    batch, text = steps.fixed_batch(model, args.batch, args.seconds, args.target_tokens)
    positions, targets = steps.llm_positions(model, batch, text), sum(map(len, text.target_ids))
    engine = steps.train_engine(model, spec, context, 1000)
    batch = batch.to(device)
    peak = (
        next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name(device)), None)
        if device.type == "cuda"
        else None
    )
    rows = []
    for checkpointing in (False, True):
        steps.set_checkpointing(model, checkpointing)
        with steps.fresh_peak(device):
            flops = step_flops(engine, batch, text)
            run = steps.timed(lambda: steps.train_step(engine, batch, text), device, args.warmup, args.repeats)
            memory = steps.peak_memory_mib(device)
        world = context.world_size
        rows.append(
            {
                "what": f"train {engine_name} x{world}" + (", act. ckpt" if checkpointing else ""),
                "ms": run.seconds * 1000,
                "positions_per_s": positions * world / run.seconds,
                "targets_per_s": targets * world / run.seconds,
                "gflop": flops / 1e9,
                "mfu": flops / run.seconds / peak if peak else None,
                "peak_mib": memory,
            }
        )
    if engine_name == "single":
        rows.append(decode_row(args, engine, batch, device))
    teardown(context)
    return rows


def decode_row(args: argparse.Namespace, engine, batch, device) -> dict:
    """Batched greedy decoding of exactly ``args.new_tokens`` tokens per clip: wall time over audio seconds.

    Runs as validation decodes: the engine's decoding model under its autocast."""
    import steps

    with steps.fresh_peak(device), engine.decoding() as model, engine.autocast():
        model.eval()
        run = steps.timed(lambda: steps.decode_fixed(model, batch, args.new_tokens, 1), device, 1, args.repeats)
        memory = steps.peak_memory_mib(device)
    return {
        "what": f"greedy decode {args.new_tokens} tokens",
        "ms": run.seconds * 1000,
        "rtf": run.seconds / (args.batch * args.seconds),
        "tokens_per_s": args.batch * args.new_tokens / run.seconds,
        "peak_mib": memory,
    }


def fsdp2_rows(args: argparse.Namespace, gpus: int) -> list[dict]:
    """The FSDP2 rows from a torchrun of this script over ``gpus`` GPUs (rank 0 prints them)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"]
    command += [__file__, "--fsdp2-worker", *forwarded(args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        print(f"fsdp2 across {gpus} GPUs failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return []
    return json.loads(done.stdout.strip().splitlines()[-1])


def forwarded(args: argparse.Namespace) -> list[str]:
    options = ["--device", args.device, "--batch", str(args.batch), "--seconds", str(args.seconds)]
    options += ["--target-tokens", str(args.target_tokens), "--new-tokens", str(args.new_tokens)]
    options += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    return options + ["--tiny"] * args.tiny


def print_table(rows: list[dict], args: argparse.Namespace, seconds: float) -> None:
    import steps

    def cell(row: dict, key: str, fmt: str) -> str:
        return "-" if row.get(key) is None else format(row[key], fmt)

    shapes = "TINY shapes" if args.tiny else "whisper-large-v3 shape -> linear k=5 -> 7B Llama shape + LoRA r32 q/k/v/o"
    print(
        f"{shapes}; bf16, random weights; batch {args.batch} x {args.seconds:g} s, targets {args.target_tokens} tokens"
    )
    header = ["measure", "ms", "positions/s", "targets/s", "GFLOP/step", "MFU", "RTF", "decode tok/s", "peak MiB"]
    body = [
        [
            row["what"],
            cell(row, "ms", ".1f"),
            cell(row, "positions_per_s", ".0f"),
            cell(row, "targets_per_s", ".1f"),
            cell(row, "gflop", ".1f"),
            cell(row, "mfu", ".1%"),
            cell(row, "rtf", ".4f"),
            cell(row, "tokens_per_s", ".0f"),
            cell(row, "peak_mib", ".0f"),
        ]
        for row in rows
    ]
    print(steps.table(header, body))
    print(f"total {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes (with --device cpu: a dry run of every path)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--target-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--engine", choices=["single", "fsdp2"], default="single", help="dry runs: the engine to use")
    parser.add_argument("--fsdp2-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    if args.fsdp2_worker:
        rows = train_rows(args, "fsdp2")
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(rows))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no GPU present: bench/gpu.py measures on CUDA devices (bench/gpu.py --device cpu --tiny is a dry run)")
        return
    start = time.perf_counter()
    rows = train_rows(args, args.engine)
    gpus = torch.cuda.device_count() if args.device == "cuda" else 1
    if gpus > 1:
        rows += fsdp2_rows(args, gpus)
    print_table(rows, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
