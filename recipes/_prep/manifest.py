"""Writing SLAM jsonl manifests: one JSON object per line, ``source`` relative to the manifest's folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def relative_source(audio: Path, manifest: Path) -> str:
    """``audio`` relative to the folder of ``manifest`` (POSIX separators), as SLAM resolves ``source``."""
    relative = os.path.relpath(Path(audio).absolute(), Path(manifest).absolute().parent)
    return Path(relative).as_posix()


def write_manifest(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write ``records`` (each with ``key`` and an absolute or cwd-relative ``source`` Path) to ``path``.

    ``source`` is rewritten relative to the manifest. The file appears complete or not at all
    (written under a temporary name, then renamed). Returns the number of lines.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}")
    count = 0
    with open(temporary, "w", encoding="utf-8") as stream:
        for record in records:
            line = {**record, "source": relative_source(record["source"], path)}
            stream.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    os.replace(temporary, path)
    return count
