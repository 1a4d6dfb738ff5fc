"""pytest plugin of the SLAM conformance kit (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    from slam_core import plugins

    try:
        registry = plugins.registry()
    except plugins.PluginError as exc:
        return f"slam plugins: {exc}"
    found = ", ".join(f"{r.entry_point} ({r.status.value})" for r in registry.reports) or "none"
    return f"slam plugins: {found}"


@pytest.fixture
def slam_registry():
    """The plugin registry of the current environment."""
    from slam_core import plugins

    return plugins.registry()
