"""Running the conformance kit on test modules in a fresh pytest process, and reading its verdicts.

The kit's tests import torch and the components under test, so each run is a subprocess (torch cannot
be re-imported in-process). The process sees a fake site (see ``fakedist.py``) on ``PYTHONPATH``, with
no plugin environment variable set: CI's ``SLAM_STRICT_PLUGINS=1`` would make the broken plugins
that these runs install on purpose fatal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

PLUGIN_ENV_VARS = ("SLAM_STRICT_PLUGINS", "SLAM_PLUGINS_ALLOW", "SLAM_PLUGINS_DENY", "SLAM_PLUGINS_PREFER")


@dataclass(frozen=True)
class Verdict:
    outcome: str  # passed | failed | skipped
    message: str


def clean_env(*paths: Path) -> dict[str, str]:
    """The environment of a run: ``paths`` first on PYTHONPATH, no plugin variables."""
    env = {key: value for key, value in os.environ.items() if key not in PLUGIN_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_tests(folder: Path, *paths: Path, args: tuple[str, ...] = ()) -> dict[str, dict[str, Verdict]]:
    """``{test class: {test name: Verdict}}`` of a pytest run in ``folder`` with ``paths`` importable."""
    report = folder / "kit-report.xml"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", *args]
    result = subprocess.run(
        command, cwd=folder, env=clean_env(*paths), capture_output=True, text=True, timeout=1800, check=False
    )
    assert result.returncode in (0, 1) and report.is_file(), result.stdout[-4000:] + result.stderr[-4000:]
    verdicts: dict[str, dict[str, Verdict]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            verdict = Verdict("failed", f"{failure.get('message', '')}\n{failure.text or ''}")
        elif skipped is not None:
            verdict = Verdict("skipped", skipped.get("message", ""))
        else:
            verdict = Verdict("passed", "")
        owner = case.get("classname", "").rsplit(".", 1)[-1]
        verdicts.setdefault(owner, {})[case.get("name", "")] = verdict
    return verdicts
