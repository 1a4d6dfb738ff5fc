"""What the step benchmarks share: a pipeline from a spec, a batch at fixed positions, timed steps.

Used by ``bench/fixed_positions.py`` and ``bench/gpu.py``. Every batch has fixed positions: B
clips of the same length (random noise; the encoder is random too), targets of exactly T
tokens, and decoding that generates exactly N tokens (``min_new_tokens = max_new_tokens``), so
two frameworks can be compared position for position.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from slam_core.model import SlamModel, TextInputs, build_model
from slam_core.runtime.data.batch import Batch
from slam_core.runtime.train.probe import fixed_batch, train_engine
from slam_core.runtime.train.probe import train_step as _train_step
from slam_core.spec import PipelineSpec, validate_spec

#: fixed_batch and train_engine are the runtime's own (slam_core.runtime.train.probe), re-exported.
__all__ = ["build", "fixed_batch", "set_checkpointing", "train_engine", "train_step"]


@dataclass
class Timed:
    """Seconds per repetition (the median of ``repeats``, after ``warmup`` untimed ones)."""

    seconds: float
    repeats: int


def build(spec: dict[str, Any], device: torch.device | str = "cpu") -> tuple[PipelineSpec, SlamModel]:
    """Validate ``spec`` and build its model with every weight allocated (and randomly initialised) on ``device``."""
    validated = validate_spec(spec)
    with torch.device(device):
        model = build_model(validated)
    return validated, model


def llm_positions(model: SlamModel, batch: Batch, text: TextInputs) -> int:
    """LLM input positions of the batch (modality + prompt + target, summed over samples)."""
    modality = model.modality_lengths(batch.feature_lengths).tolist()
    texts = zip(text.prefix_ids, text.suffix_ids, text.target_ids or [[]] * len(modality), strict=True)
    return sum(m + len(p) + len(s) + len(t) for m, (p, s, t) in zip(modality, texts, strict=True))


def set_checkpointing(model, enabled: bool) -> None:
    """Turn the LLM's activation checkpointing on (every decoder layer) or off."""
    from slam_plugin_vicuna.llm import enable_checkpointing

    base = model.llm.model.get_base_model() if hasattr(model.llm.model, "get_base_model") else model.llm.model
    if enabled:
        enable_checkpointing(base)
    elif hasattr(base, "activation_checkpointing_disable"):  # transformers >= 5.x's name
        base.activation_checkpointing_disable()
    else:
        base.gradient_checkpointing_disable()


def train_step(engine, batch: Batch, text: TextInputs) -> float:
    """One optimizer step on one micro-batch, as the trainer runs it; returns the loss."""
    return float(_train_step(engine, batch, text))


def timed(run: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> Timed:
    """The median wall time of ``run()`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return Timed(float(np.median(times)), repeats)


def decode_fixed(model: SlamModel, batch: Batch, new_tokens: int, beams: int) -> list[list[int]]:
    """Generate exactly ``new_tokens`` tokens per clip (EOS held back) with ``beams`` beams."""
    prompts = model.text_inputs(batch.samples, with_targets=False)
    options = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "num_beams": beams, "do_sample": False}
    return model.generate(batch.features, batch.feature_lengths, prompts, return_tokens=True, **options)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float:
    """Peak allocated GPU memory since the last reset, or this process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def fresh_peak(device: torch.device) -> Iterator[None]:
    """Reset the GPU's peak-memory counter (RSS peaks cannot be reset: measure those in a process of their own)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, columns right-aligned after the first."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
