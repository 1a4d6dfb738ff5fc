"""The errors :func:`slam_core.metrics.score` raises besides ``ValueError`` for bad inputs."""

from __future__ import annotations


class MetricUnavailable(RuntimeError):
    """A metric cannot be computed here (a missing package, Java or jar); the message says what to install."""

    def __init__(self, metric: str, reason: str):
        super().__init__(f"metric {metric!r} is unavailable here: {reason}")
        self.metric = metric
        self.reason = reason


class UnknownMetricError(ValueError):
    """A metric name that is not in the registry; the message lists the known names."""
