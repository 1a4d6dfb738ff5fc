"""Test support shared by slam-core's tests (``tests/`` is on ``sys.path``, see conftest.py).

``support.synthetic``: synthetic in-memory batches and a command that trains any spec on them
(``python -m support.synthetic``, with :func:`subprocess_env` putting ``tests/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent


def subprocess_env(**variables: str) -> dict[str, str]:
    """This process's environment plus ``variables``, with ``tests/`` first on ``PYTHONPATH`` (so that a
    child process can run ``python -m support.synthetic``)."""
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return os.environ | {"PYTHONPATH": path} | variables
