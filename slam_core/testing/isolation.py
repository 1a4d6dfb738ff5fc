"""Which heavy modules importing a module pulls in, measured in a fresh interpreter.

Discovery, ``slam plugins`` and ``slam spec ...`` import every plugin's entry-point module, so
that module must not import torch. In-process the question cannot be answered (the test
session has torch loaded already), so :func:`import_chain` imports the module in a new Python
process with the same ``sys.path`` and reports the import statements that led to torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

_PROBE = r"""
import importlib, json, os, sys, traceback

watched, found = sys.argv[2], []
machinery = os.path.dirname(importlib.__file__)

class Spy:
    def find_spec(self, name, path=None, target=None):
        if not found and (name == watched or name.startswith(watched + ".")):
            found.extend(
                f"{frame.filename}:{frame.lineno}: {frame.line}"
                for frame in traceback.extract_stack()[:-1]
                if not frame.filename.startswith(("<", machinery))
            )
        return None

sys.meta_path.insert(0, Spy())
error = None
try:
    importlib.import_module(sys.argv[1])
except BaseException as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps({"imported": watched in sys.modules, "chain": found, "error": error}))
"""


@dataclass(frozen=True)
class ImportReport:
    """What importing ``module`` did: whether ``watched`` got imported, through which statements."""

    module: str
    watched: str
    imported: bool
    chain: tuple[str, ...]
    error: str | None

    def culprit(self) -> str:
        """The import statements (outermost first) that led to ``watched``, one per line."""
        statements = [line for line in self.chain if "import" in line.partition(": ")[2]]
        return "\n".join(f"    {line}" for line in statements or self.chain) or "    (no Python frame recorded)"


def import_chain(module: str, watched: str = "torch", timeout: float = 120.0) -> ImportReport:
    """Import ``module`` in a fresh interpreter (same ``sys.path``) and report on ``watched``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, module, watched],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        return ImportReport(module, watched, False, (), f"the probe failed: {result.stderr.strip()[-2000:]}")
    data = json.loads(lines[-1])
    return ImportReport(module, watched, bool(data["imported"]), tuple(data["chain"]), data["error"])


def entry_point_module(entry_point: str, distribution: str, group: str) -> str:
    """The module an installed entry point names (``"pkg.plugin"`` of ``"pkg.plugin:obj"``)."""
    for candidate in metadata.entry_points(group=group, name=entry_point):
        dist = getattr(candidate, "dist", None)
        if dist is None or dist.metadata.get("Name") == distribution:
            return candidate.value.partition(":")[0].strip()
    raise LookupError(f"no entry point {entry_point!r} of {distribution} in group {group!r}")
