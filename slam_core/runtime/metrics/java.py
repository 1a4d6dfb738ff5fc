"""Finding a Java runtime for the Java-based caption tools (PTB tokenizer, SPICE)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess


def find_java(java: str | None = None) -> str | None:
    """The Java executable: ``java`` if given (a path or a name on PATH), else ``java`` on PATH; None if absent."""
    return shutil.which(java or "java")


@functools.cache
def java_major_version(java: str) -> int | None:
    """The major version of ``java`` (8 for "1.8.0_292", 17 for "17.0.15"), or None if it cannot say."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major
