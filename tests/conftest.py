"""Shared fixtures for slam-core's tests.

pytest runs with ``--import-mode=importlib``, which does not put ``tests/`` on ``sys.path``;
it is added here so that test modules can ``import fakedist`` (the fake-distribution builder).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from fakedist import FakeSite

from slam_core import plugins

PLUGIN_ENV_VARS = ("SLAM_STRICT_PLUGINS", "SLAM_PLUGINS_ALLOW", "SLAM_PLUGINS_DENY")


@pytest.fixture
def clean_discovery(monkeypatch):
    """No plugin environment variables, and no registry cached before or after the test."""
    for var in PLUGIN_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    plugins.clear_cache()
    yield
    plugins.clear_cache()


@pytest.fixture
def fake_site(tmp_path, monkeypatch, clean_discovery):
    """A :class:`fakedist.FakeSite` on ``sys.path``; its modules are unloaded afterwards."""
    site = FakeSite(tmp_path / "site-packages")
    monkeypatch.syspath_prepend(str(site.root))
    yield site
    site.unload()
    plugins.clear_cache()
