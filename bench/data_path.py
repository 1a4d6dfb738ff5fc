"""Samples/s of the data path alone (no model): manifest of wav files vs the same corpus as lhotse Shar shards.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/data_path.py [--n 10000 --workers 2 --batch-size 16]

Writes ``--n`` random-noise wav clips (``--seconds`` long, uniformly) and a SLAM-LLM manifest of them
into a temporary folder, shards it with ``slam data shard`` (timed), then for each source measures
indexing (reading the manifest or the cut shards, probing durations) and one shuffled, duration-
bucketed epoch through the DataLoader (audio decode + the toy encoder's log-mel + padding into
batches), and prints a table. The files were just written, so reads hit the page cache: the
figures compare the two paths' CPU cost; drop the caches between runs for cold-disk figures.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

from slam_core.runtime.data import manifest_batches
from slam_core.runtime.data.sharding import write_shar
from slam_core.spec import DataSpec
from slam_core.toy import LogMel

RATE = 16000


def write_corpus(folder: Path, count: int, seconds: tuple[float, float], seed: int = 0) -> Path:
    """``count`` int16 noise clips and a manifest naming them."""
    rng = np.random.default_rng(seed)
    lines = []
    for index in range(count):
        frames = int(rng.uniform(*seconds) * RATE)
        soundfile.write(folder / f"{index}.wav", rng.integers(-8000, 8000, frames, dtype=np.int16), RATE)
        lines.append(f'{{"key": "u{index}", "source": "{index}.wav", "target": "word {index % 97}"}}\n')
    manifest = folder / "train.jsonl"
    manifest.write_text("".join(lines))
    return manifest


def measure(source: Path, data: DataSpec) -> dict[str, float]:
    """Seconds to index ``source`` and to load one epoch of it, and the samples loaded."""
    start = time.perf_counter()
    batches = manifest_batches(source, LogMel(RATE, n_mels=80, hop_length=160), data, shuffle=True, seed=0)
    indexed = time.perf_counter()
    batches.set_epoch(1)
    samples = sum(len(batch) for batch in batches)
    return {"index": indexed - start, "epoch": time.perf_counter() - indexed, "samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="utterances")
    parser.add_argument("--seconds", type=float, nargs=2, default=(0.3, 2.0), metavar=("MIN", "MAX"))
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=1000)
    args = parser.parse_args()
    data = DataSpec(batch_size=args.batch_size, num_workers=args.workers, max_duration_s=60.0)
    with tempfile.TemporaryDirectory(prefix="slam-bench-data-") as scratch:
        folder = Path(scratch)
        manifest = write_corpus(folder, args.n, tuple(args.seconds))
        start = time.perf_counter()
        shards = write_shar(manifest, folder / "shar", shard_size=args.shard_size)
        shard_seconds = time.perf_counter() - start
        results = {
            "manifest (wav files)": measure(manifest, data),
            f"shar ({shards} shards)": measure(folder / "shar", data),
        }
    print(f"{args.n} utterances of {args.seconds[0]:g}-{args.seconds[1]:g} s, batch_size {args.batch_size}, "
          f"{args.workers} workers; slam data shard took {shard_seconds:.1f} s")  # fmt: skip
    print(f"{'source':<22} {'index s':>9} {'epoch s':>9} {'samples/s (epoch)':>18} {'samples/s (index+epoch)':>24}")
    for name, r in results.items():
        print(
            f"{name:<22} {r['index']:>9.2f} {r['epoch']:>9.2f} {r['samples'] / r['epoch']:>18.0f} "
            f"{r['samples'] / (r['index'] + r['epoch']):>24.0f}"
        )


if __name__ == "__main__":
    main()
