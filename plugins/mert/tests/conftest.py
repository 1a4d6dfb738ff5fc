"""Shared fixtures of the mert plugin's tests: the parity fixture on disk (see fixtures/README.md); puts
``tests/`` on sys.path for ``mert_testing``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(FIXTURES.parent) not in sys.path:
    sys.path.insert(0, str(FIXTURES.parent))


@pytest.fixture(scope="session")
def reference() -> dict[str, torch.Tensor]:
    """Input clips (``input.i``) and upstream MERT's states ``[L + 1, T, D]`` (``<checkpoint>.i``)."""
    return load_file(FIXTURES / "reference.safetensors")


@pytest.fixture(scope="session")
def clips(reference) -> list[torch.Tensor]:
    return [reference[f"input.{i}"] for i in range(sum(k.startswith("input.") for k in reference))]


@pytest.fixture
def checkpoint_copy(tmp_path):
    """``checkpoint_copy(name)``: a writable copy of a fixture checkpoint folder."""

    def copy(name: str = "mert-tiny-95m") -> Path:
        return Path(shutil.copytree(FIXTURES / name, tmp_path / name))

    return copy
