"""Train step, greedy and beam decoding, peak RSS at fixed positions: the pipeline to set beside SLAM-LLM's.

Run: HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python bench/fixed_positions.py [--pad-30s] [--tiny]
     ... bench/fixed_positions.py --profile "train step" [--pad-30s]   (torch.profiler: the top operators)

The pipeline is the one measured against SLAM-LLM (CPU, fp32): a random Whisper-shaped
encoder (384 wide, 4 layers, frozen), the linear projector (k=5, 10 positions per second), a
SmolLM2-135M-shaped Llama built from its config (576 x 30 layers, 9 heads, 3 KV heads,
vocabulary 49152, frozen) with LoRA r=8 on q/v, batch 4 x 4.0 s clips (40 audio positions
each; ``--pad-30s`` pads every clip to 30 s = 300 positions, as SLAM-LLM's Whisper input does)
and targets of exactly 20 tokens. Decoding generates exactly 30 tokens (EOS held back). The train
step is measured twice: as is, and with activation checkpointing of every LLM decoder layer.
Decoding runs the model as ``slam infer`` does (LoRA folded into the LLM's weights; beam search
runs each prompt once, not once per beam).
Each measurement runs in a process of its own, so its peak RSS is its own. ``--tiny``
shrinks the shapes and repetitions to prove the script works (no meaningful timing).
``--compile`` trains with ``train.compile`` (each layer torch.compiled; the warm-up compiles).
``--dtype bf16`` stores the frozen encoder and LLM in bf16 and trains under bf16 autocast.
``--profile MEASURE`` runs one measure under torch.profiler instead (after the warm-up) and prints
its operators by self CPU time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from slam_plugin_vicuna.plugin import PRESETS

sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCH, SECONDS, TARGET_TOKENS, NEW_TOKENS = 4, 4.0, 20, 30
#: SmolLM2-135M's shape from the vicuna plugin's preset; toy-llm has no tied embeddings (untied output head).
SMOLLM2_135M = {key: value for key, value in PRESETS["smollm2-135m"].items() if key != "tie_word_embeddings"}
SPEC = {
    "encoder": {
        "type": "whisper",
        "size": "tiny",
        "shape": {"hidden_size": 384, "num_layers": 4, "num_heads": 6, "intermediate_size": 1536},
        "mode": "variable",
        "dtype": "fp32",
    },
    "projector": {"type": "linear-projector", "k": 5, "hidden_dim": 2048},
    "llm": {
        "type": "toy-llm",
        "dtype": "fp32",
        "shape": SMOLLM2_135M,
    },
    "peft": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]},
    "task": {"type": "asr", "prompt": "Transcribe speech to text."},
    "data": {"max_duration_s": 30.0},
    "train": {"dtype": "fp32", "lr": 1e-4, "warmup_steps": 1},
}
TINY = {
    "encoder": {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "intermediate_size": 128},
    "llm": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128},
}
#: "checkpointed": the same train step, each LLM decoder layer recomputed in the backward pass.
CHECKPOINTED = "train step, checkpointed"
MEASURES = ("train step", CHECKPOINTED, "greedy 30 tokens", "beam 4, 30 tokens")


def spec_for(tiny: bool, pad_30s: bool, dtype: str = "fp32", compiled: bool = False) -> dict:
    spec = json.loads(json.dumps(SPEC))
    spec["train"]["compile"] = compiled
    for section in ("encoder", "llm", "train"):
        spec[section]["dtype"] = dtype  # bf16: frozen weights stored in bf16, training under bf16 autocast
    if pad_30s:
        spec["encoder"]["mode"] = "pad_to_30s"
    if tiny:
        spec["encoder"]["shape"].update(TINY["encoder"])
        spec["llm"]["shape"].update(TINY["llm"], vocab_size=512)
        spec["projector"]["hidden_dim"] = 64
    return spec


def measure(name: str, spec: dict, warmup: int, repeats: int, profile_rows: int = 0) -> dict:
    """Build the pipeline and time ``name`` in this process; report seconds, positions and peak RSS.

    With ``profile_rows``, the timed repetitions run under torch.profiler and its table of the top
    ``profile_rows`` operators (by self CPU time) is printed."""
    import steps
    import torch

    from slam_core.runtime.train.distributed import setup

    torch.manual_seed(0)
    validated, model = steps.build(spec)
    batch, text = steps.fixed_batch(model, BATCH, SECONDS, TARGET_TOKENS)
    device = torch.device("cpu")
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile_rows else None

    def timed(run):
        if profiler is None:
            return steps.timed(run, device, warmup, repeats)
        steps.timed(run, device, warmup, 0)
        with profiler:
            return steps.timed(run, device, 0, repeats)

    if name.startswith("train step"):
        steps.set_checkpointing(model, name == CHECKPOINTED)
        engine = steps.train_engine(model, validated, setup("single"), warmup + repeats)
        result = timed(lambda: steps.train_step(engine, batch, text))
        positions = steps.llm_positions(model, batch, text)
    else:
        from slam_core.runtime.infer.weights import ready_for_decoding

        model = ready_for_decoding(model, device)  # as `slam infer` and `slam serve` decode: LoRA folded in
        beams = 4 if name.startswith("beam") else 1
        generated: list = []
        result = timed(lambda: generated.append(steps.decode_fixed(model, batch, NEW_TOKENS, beams)))
        if any(len(row) != NEW_TOKENS for row in generated[-1]):
            raise RuntimeError(f"{name}: generated {[len(r) for r in generated[-1]]} tokens, not {NEW_TOKENS} each")
        positions = None
    if profiler is not None:
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=profile_rows))
    audio = int(model.modality_lengths(batch.feature_lengths)[0])
    return {
        "seconds": result.seconds,
        "positions": positions,
        "audio_positions": audio,
        "peak_mib": steps.peak_memory_mib(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pad-30s", action="store_true", help="pad every clip to 30 s (300 audio positions)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, one repetition: proves the script runs")
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="weights and autocast dtype")
    parser.add_argument("--compile", action="store_true", help="train.compile: torch.compile each layer")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", metavar="MEASURE", choices=MEASURES, help="profile one measure: top operators")
    parser.add_argument("--rows", type=int, default=15, help="operators --profile prints (default 15)")
    parser.add_argument("--worker", metavar="MEASURE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    spec = spec_for(args.tiny, args.pad_30s, args.dtype, args.compile)
    warmup, repeats = (0, 1) if args.tiny else (args.warmup, args.repeats)
    if args.profile:
        result = measure(args.profile, spec, warmup, repeats, profile_rows=args.rows)
        print(f"{args.profile}: {result['seconds'] * 1000:.0f} ms a repetition under the profiler ({repeats} profiled)")
        return
    if args.worker:
        print(json.dumps(measure(args.worker, spec, warmup, repeats)))
        return
    rows = []
    for name in MEASURES:
        command = [sys.executable, __file__, "--worker", name]
        command += ["--tiny"] * args.tiny + ["--pad-30s"] * args.pad_30s + ["--compile"] * args.compile
        command += ["--dtype", args.dtype]
        command += ["--repeats", str(args.repeats), "--warmup", str(args.warmup)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"{name} failed:\n{done.stderr[-4000:]}")
        rows.append((name, json.loads(done.stdout.strip().splitlines()[-1])))
    import steps

    audio = rows[0][1]["audio_positions"]
    padded = ", padded to 30 s" if args.pad_30s else ""
    shapes = "TINY shapes" if args.tiny else "whisper 384x4 -> linear k=5 -> SmolLM2-135M shape + LoRA r8 q/v"
    print(
        f"batch {BATCH} x {SECONDS:g} s clips ({audio} audio positions each{padded}), targets {TARGET_TOKENS} "
        f"tokens, decoding {NEW_TOKENS} tokens; {shapes}, {args.dtype}, CPU"
    )
    body = []
    for name, result in rows:
        positions = result["positions"]
        per_s = f"{positions / result['seconds']:.0f}" if positions else "-"
        body.append([name, f"{result['seconds'] * 1000:.0f}", per_s, f"{result['peak_mib']:.0f}"])
    print(steps.table(["measure", "ms (median)", "LLM positions/s", "peak RSS MiB"], body))


if __name__ == "__main__":
    main()
