"""The errors :func:`slam_core.runtime.metrics.score` raises (defined in :mod:`slam_core.errors`)."""

from __future__ import annotations

from slam_core.errors import MetricUnavailable, UnknownMetricError

__all__ = ["MetricUnavailable", "UnknownMetricError"]
