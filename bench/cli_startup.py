"""Cold-start time of `slam plugins` (target: <= 0.3 s) next to a bare interpreter start.

Run: HF_HUB_OFFLINE=1 .venv/bin/python bench/cli_startup.py [--repeat 10]
Prints a table of median wall times and the ratio to `python -c pass`, measured in one run,
and whether torch was imported by the command.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "slam plugins": [sys.executable, "-c", "from slam_core.runtime.cli import main; main(['plugins'])"],
    "slam spec schema": [sys.executable, "-c", "from slam_core.runtime.cli import main; main(['spec', 'schema'])"],
}
TORCH_PROBE = "import sys; from slam_core.runtime.cli import main; main(['plugins']); print('torch' in sys.modules)"


def median_seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    results = {name: median_seconds(command, args.repeat) for name, command in COMMANDS.items()}
    baseline = results["python -c pass"]
    print(f"{'command':<20} {'median s':>10} {'x python':>10}")
    for name, seconds in results.items():
        print(f"{name:<20} {seconds:>10.3f} {seconds / baseline:>10.2f}")
    probe = subprocess.run([sys.executable, "-c", TORCH_PROBE], check=True, capture_output=True, text=True)
    print(f"torch imported by `slam plugins`: {probe.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
