"""recipes/vicuna-7b-lora: `slam inspect` counts, derived here from the spec's own numbers."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from slam_plugin_vicuna.plugin import VicunaConfig

from slam_core.runtime.cli import main

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "vicuna-7b-lora" / "spec.yaml"


def inspect_rows(capsys) -> dict[str, tuple[int, int]]:
    assert main(["inspect", str(RECIPE)]) == 0
    rows = {}
    for line in capsys.readouterr().out.splitlines():
        match = re.match(r"^(\w+)\s+\S+\s+([\d,]+)\s+([\d,]+)", line)
        if match:
            rows[match.group(1)] = tuple(int(n.replace(",", "")) for n in match.group(2, 3))
    return rows


def test_slam_inspect_counts_paper_scale_lora_and_the_projector(capsys):
    spec = yaml.safe_load(RECIPE.read_text())
    shape, lora, projector = VicunaConfig(**spec["llm"]).architecture(), spec["peft"], spec["projector"]
    encoder_width = spec["encoder"]["shape"]["hidden_size"]
    assert encoder_width == 1280  # Whisper-large's width
    hidden, layers, inner, vocab = shape.hidden_size, shape.num_layers, shape.intermediate_size, shape.vocab_size
    assert (hidden, layers, shape.num_heads, inner, vocab) == (4096, 32, 32, 11008, 32000)
    assert (lora["r"], lora["alpha"], lora["dropout"]) == (32, 32, 0.05)

    adapters = layers * len(lora["target_modules"]) * lora["r"] * (hidden + hidden)  # A: r x in, B: out x r
    assert adapters == 33_554_432
    k, width = projector["k"], projector["hidden_dim"]
    projector_count = (k * encoder_width * width + width) + (width * hidden + hidden)
    llama = 2 * vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inner + 2 * hidden) + hidden

    rows = inspect_rows(capsys)
    assert rows["peft"] == (adapters, adapters)
    assert rows["projector"] == (projector_count, projector_count)
    assert rows["llm"] == (llama + adapters, adapters)
    assert rows["encoder"][1] == 0  # frozen
