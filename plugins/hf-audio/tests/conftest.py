"""Shared fixtures of the hf-audio plugin's tests; puts ``tests/`` on sys.path for ``hf_testing``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from hf_testing import save_tiny  # noqa: E402


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """``tiny_folder(family, **fields)``: a tiny random checkpoint folder, written once per session."""
    written: dict[tuple, Path] = {}

    def folder(family: str, **fields) -> Path:
        key = (family, tuple(sorted(fields.items())))
        if key not in written:
            written[key] = tmp_path_factory.mktemp(family)
            save_tiny(written[key], family, **fields)
        return written[key]

    return folder
