"""A bounded load test of `slam serve`: N concurrent OpenAI clients, every answer checked, latency and memory.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/serve_load.py [--run RUN] [--clients 8] [--requests 20]

Without ``--run`` it trains a tiny toy run in a temporary folder first. The server is started as
``slam serve RUN`` in its own process; each client sends ``--requests`` clips in turn. Every
answer must equal the answer of a lone request for the same clip (batching changes nothing).
Prints p50 / p95 / max latency, throughput, the server's mean batch, and the server's RSS
before the load, after each round and at the end (memory must stay flat across rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile

TOY = {
    "name": "toy-asr",
    "encoder": {
        "type": "toy-encoder",
        "shape": {"num_mel_bins": 8, "hidden_size": 32, "num_layers": 2, "num_heads": 2},
    },
    "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 32},
    "llm": {"type": "toy-llm", "shape": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128}},
    "peft": {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
    "task": {"type": "asr"},
    "data": {"num_workers": 0},
    "train": {"max_steps": 2, "lr": 0.01, "warmup_steps": 0, "dtype": "fp32"},
    "infer": {"batch_size": 1, "max_new_tokens": 8},
}


def make_clips(folder: Path, count: int) -> list[Path]:
    clips = []
    for index in range(count):
        audio = 0.1 * np.random.default_rng(index).standard_normal(8000 + 4000 * index).astype("float32")
        path = folder / f"clip{index}.wav"
        soundfile.write(path, audio, 16000)
        clips.append(path)
    return clips


def train_toy(folder: Path, clips: list[Path]) -> Path:
    manifest = folder / "clips.jsonl"
    manifest.write_text("".join(json.dumps({"key": p.stem, "source": str(p), "target": "a b"}) + "\n" for p in clips))
    spec = TOY | {"data": TOY["data"] | {"train_manifest": str(manifest)}}
    (folder / "spec.json").write_text(json.dumps(spec))
    slam = [sys.executable, "-c", "import sys; from slam_core.runtime.cli import main; sys.exit(main())"]
    subprocess.run([*slam, "train", str(folder / "spec.json"), "--run-dir", str(folder / "run")], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return folder / "run"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(run: Path, port: int, args) -> subprocess.Popen:
    command = [sys.executable, "-c", "import sys; from slam_core.runtime.cli import main; sys.exit(main())",
               "serve", str(run), "--port", str(port), "--device", "cpu",
               "--max-batch-size", str(args.max_batch_size), "--max-wait-ms", str(args.max_wait_ms)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("slam serve exited before it was ready") from None
            time.sleep(0.2)
    server.kill()
    raise SystemExit("slam serve did not start within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a trained run folder (default: train a tiny toy run)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=20, help="requests per client per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    args = parser.parse_args()
    import openai

    scratch = Path(tempfile.mkdtemp(prefix="slam-serve-load-"))
    clips = make_clips(scratch, 6)
    run = args.run or train_toy(scratch, clips)
    port = free_port()
    server = start_server(run, port, args)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)

    def ask(path: Path) -> tuple[str, float]:
        started = time.perf_counter()
        with open(path, "rb") as handle:
            text = client.audio.transcriptions.create(model="served", file=handle).text
        return text, time.perf_counter() - started

    try:
        expected = {path: ask(path)[0] for path in clips}  # lone requests: the reference answers
        memory = [("before the load", rss_mib(server.pid))]
        latencies, wrong, started = [], 0, time.perf_counter()
        jobs = [clips[i % len(clips)] for i in range(args.clients * args.requests)]
        for round_index in range(args.rounds):
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                for path, (text, seconds) in zip(jobs, pool.map(ask, jobs), strict=True):
                    latencies.append(seconds)
                    wrong += text != expected[path]
            memory.append((f"after round {round_index + 1}", rss_mib(server.pid)))
        elapsed = time.perf_counter() - started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
            health = json.load(response)
    finally:
        server.terminate()
        server.wait(timeout=30)

    quantiles = statistics.quantiles(latencies, n=20)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.clients} clients x {args.requests} requests x "
          f"{args.rounds} rounds; model {run}")  # fmt: skip
    print(f"{'requests':>9} {'wrong':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'req/s':>7} {'mean batch':>11}")
    print(f"{len(latencies):>9} {wrong:>6} {statistics.median(latencies) * 1000:>8.1f} {quantiles[18] * 1000:>8.1f} "
          f"{max(latencies) * 1000:>8.1f} {len(latencies) / elapsed:>7.1f} {health['mean_batch']:>11.2f}")  # fmt: skip
    print(f"\n{'server RSS':<18} {'MiB':>8}")
    for label, value in memory:
        print(f"{label:<18} {value:>8.1f}")
    if wrong:
        raise SystemExit(f"{wrong} answers differ from the lone-request answers")


if __name__ == "__main__":
    main()
