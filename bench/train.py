"""Training and decoding throughput, with and without duration bucketing and the encoder cache.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/train.py [--utterances 96 --epochs 2]

Builds a synthetic manifest (random-noise clips of 0.5-4 s with short transcripts) and a small
pipeline (whisper-shaped 2-layer encoder, linear projector, toy Llama + LoRA), then for each
configuration trains in a fresh subprocess (so peak RSS is that run's own) and prints a table:
samples/s, target tokens/s, peak RSS, and the padding share of the encoder input ("packing":
train.pack_sequences, the LLM's rows packed; the encoder still pads). A final row
decodes the test manifest. Numbers are only comparable as ratios within one run.
On a GPU, peak memory is torch.cuda.max_memory_allocated instead of RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = {
    "encoder": {"type": "whisper", "shape": {"num_layers": 2}, "size": "tiny"},
    "projector": {"type": "linear-projector", "k": 4, "hidden_dim": 512},
    "llm": {
        "type": "toy-llm",
        "shape": {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "intermediate_size": 704},
    },
    "peft": {"type": "lora", "r": 8, "alpha": 16, "dropout": 0.05},
    "task": {"type": "asr"},
    "data": {"num_workers": 1, "max_batch_seconds": 16.0, "batch_size": 8, "num_buckets": 4},
    "train": {"dtype": "fp32", "warmup_steps": 2, "lr": 1e-3, "save_every_steps": 1000, "keep_last": 1},
    "infer": {"batch_size": 8, "max_new_tokens": 12},
}
CONFIGS = {
    "bucketing + cache": {"bucketing": True, "cache": True},
    "bucketing + cache + packing": {"bucketing": True, "cache": True, "pack": True},
    "bucketing": {"bucketing": True, "cache": False},
    "packing": {"bucketing": False, "cache": False, "pack": True},
    "no bucketing": {"bucketing": False, "cache": False},
}
BASELINE = "no bucketing"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"]


def make_manifest(folder: Path, count: int, seed: int) -> Path:
    import soundfile

    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        seconds = float(rng.uniform(0.5, 4.0))
        soundfile.write(folder / f"u{index}.wav", 0.1 * rng.standard_normal(int(16000 * seconds)), 16000)
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6))))
        rows.append({"key": f"u{index}", "source": f"u{index}.wav", "target": text})
    path = folder / f"manifest-{seed}.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def run_one(spec: dict, run_dir: Path, mode: str) -> dict:
    """Train (or decode) in this process and return its measurements (called in a subprocess)."""
    import torch

    from slam_core.spec import validate_spec

    validated = validate_spec(spec)
    start = time.perf_counter()
    if mode == "decode":
        from slam_core.runtime.infer.decode import decode

        output = decode(validated, run_dir / "hyps.jsonl")
        samples = len(output.read_text().splitlines())
        seconds = time.perf_counter() - start
        tokens = 0  # generated lengths vary; decode is compared on samples/s only
    else:
        from slam_core.runtime.train import train

        counts = {"samples": 0, "tokens": 0, "frames": 0, "padded": 0}
        from slam_core.model import SlamModel

        original = SlamModel.forward

        def counting_forward(self, features, feature_lengths, text):
            counts["samples"] += features.shape[0]
            counts["tokens"] += sum(len(t) for t in text.target_ids or [])
            counts["frames"] += int(feature_lengths.sum())
            counts["padded"] += features.shape[0] * features.shape[1]
            return original(self, features, feature_lengths, text)

        SlamModel.forward = counting_forward
        train(validated, run_dir=run_dir, resume=False)
        seconds = time.perf_counter() - start
        samples, tokens = counts["samples"], counts["tokens"]
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    result = {"samples_per_s": samples / seconds, "tokens_per_s": tokens / seconds, "peak_mib": peak}
    if mode != "decode":
        result["padding"] = 1 - counts["frames"] / max(counts["padded"], 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--worker", nargs=3, metavar=("SPEC", "RUN_DIR", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec_path, run_dir, mode = args.worker
        print(json.dumps(run_one(json.loads(Path(spec_path).read_text()), Path(run_dir), mode)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        train_manifest = make_manifest(root, args.utterances, seed=0)
        test_manifest = make_manifest(root, args.utterances // 4, seed=1)
        rows = []
        for name, config in [*CONFIGS.items(), ("decode (test set)", None)]:
            spec = json.loads(json.dumps(SPEC))
            spec["data"].update(train_manifest=str(train_manifest), test_manifest=str(test_manifest))
            spec["train"]["epochs"] = args.epochs
            if config is not None:
                spec["data"]["bucketing"] = config["bucketing"]
                spec["train"]["pack_sequences"] = config.get("pack", False)
                if config["cache"]:
                    spec["train"]["encoder_cache_dir"] = str(root / "cache" / name.replace(" ", "-"))
            spec_path = root / f"{len(rows)}.json"
            spec_path.write_text(json.dumps(spec))
            mode = "decode" if config is None else "train"
            command = [sys.executable, __file__, "--worker", str(spec_path), str(root / f"run{len(rows)}"), mode]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append((name, json.loads(done.stdout.strip().splitlines()[-1])))
    baseline = dict(rows)[BASELINE]["samples_per_s"]
    print(f"{args.utterances} utterances of 0.5-4 s, {args.epochs} epochs; whisper-tiny(2 layers) + toy Llama + LoRA")
    print(f"{'configuration':<28} {'samples/s':>10} {'tokens/s':>10} {'peak MiB':>9} {'padding':>8} {'x base':>7}")
    for name, result in rows:
        training = "padding" in result
        tokens = f"{result['tokens_per_s']:.1f}" if training else "-"
        padding = f"{result['padding']:.0%}" if training else "-"
        ratio = f"{result['samples_per_s'] / baseline:.2f}" if training else "-"
        print(
            f"{name:<28} {result['samples_per_s']:>10.1f} {tokens:>10} {result['peak_mib']:>9.0f} "
            f"{padding:>8} {ratio:>7}"
        )


if __name__ == "__main__":
    main()
