"""Random-number-generator state: capture it, restore it, and keep code from disturbing it."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def capture() -> dict[str, Any]:
    """The state of Python's, NumPy's, torch's CPU and (when initialised) CUDA generators.

    Only plain values and tensors, so that ``torch.load(weights_only=True)`` reads it back.
    """
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
    }


def restore(state: dict[str, Any]) -> None:
    """Put back a state from :func:`capture`."""
    random.setstate(_as_tuples(state["python"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run a block without changing any generator's state (data loading, validation)."""
    state = capture()
    try:
        yield
    finally:
        restore(state)


def _as_tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples; a round trip through some formats gives lists."""
    if isinstance(value, list | tuple):
        return tuple(_as_tuples(v) for v in value)
    return value
