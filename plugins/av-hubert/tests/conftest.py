"""Shared fixtures of the av-hubert plugin's tests; puts ``tests/`` on sys.path for ``avhubert_testing``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from avhubert_testing import FIXTURES


@pytest.fixture(scope="session")
def reference() -> dict[str, torch.Tensor]:
    """Inputs (``frames.i`` uint8 96x96, ``audio.i`` int16 16 kHz), upstream features and outputs (``out.*``)."""
    return load_file(FIXTURES / "reference.safetensors")
