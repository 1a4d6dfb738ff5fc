"""The one error family of SLAM: every user error anywhere is a :class:`SlamError`.

A ``SlamError`` describes input a user can fix (a spec field, a file, a checkpoint, a sample,
a plugin, a metric) and its message names the thing and the fix. Every ``slam`` command prints
it as ``slam: error: <message>`` and exits 2; any other exception is a bug and keeps its
traceback. Plugins raise these classes too (``from slam_core.errors import CheckpointError``),
so the CLI recognises their errors without knowing the plugin.

Each class also derives from the builtin exception it replaces (``ValueError``,
``RuntimeError``, ``LookupError``), so ``except ValueError`` code keeps working.
This module imports nothing.
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "BadSampleError",
    "CheckpointError",
    "ContractError",
    "DataError",
    "ExportError",
    "FusionError",
    "ManifestError",
    "MetricError",
    "MetricUnavailable",
    "OverrideError",
    "PluginError",
    "RecordError",
    "RunFolderError",
    "SlamError",
    "SpecError",
    "TrainingError",
    "UnknownComponentError",
    "UnknownMetricError",
    "VideoError",
]


class SlamError(Exception):
    """Base of every user error: the message names the thing (file, field, plugin) and the fix."""


# -- specs ---------------------------------------------------------------------------------


class SpecError(SlamError, ValueError):
    """A spec failed to load or validate; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        if len(self.problems) == 1:
            message = f"invalid pipeline spec{where}: {self.problems[0]}"
        else:
            message = f"invalid pipeline spec{where}:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class OverrideError(SlamError, ValueError):
    """A ``--set`` override that is not ``dotted.path=value`` or walks into a non-mapping."""


# -- plugins and their contracts -----------------------------------------------------------


class PluginError(SlamError, RuntimeError):
    """A plugin is broken: it failed to import, declared a malformed record, or its factory failed."""


class UnknownComponentError(PluginError, LookupError):
    """A component type was asked for that no loaded plugin provides; the message lists the choices."""


class RecordError(PluginError, ValueError):
    """A plugin returned a record that breaks the ComponentSpec rules."""


class ContractError(PluginError):
    """A component broke its contract (e.g. returned lengths other than ``output_lengths``)."""


class FusionError(SlamError, RuntimeError):
    """Fusion branches whose outputs cannot be combined as asked (e.g. different frame rates per frame)."""


# -- files: checkpoints, data, media -------------------------------------------------------


class CheckpointError(SlamError, RuntimeError, ValueError):
    """A checkpoint or weights file is missing, corrupt, of another model, or does not fit this run;
    the message names the file."""


class RunFolderError(SlamError, RuntimeError):
    """A run folder or output file that cannot be used: locked by another run, read-only, full, or of the wrong kind."""


class ExportError(SlamError, ValueError):
    """A model that cannot be exported as asked: a composition with no counterpart in the chosen format,
    an adapter that cannot be merged, an output folder that is not an export; the message says why and
    what to do instead."""


class DataError(SlamError, ValueError):
    """Base of the data pipeline's errors (manifests, samples, hypotheses files, biasing lists)."""


class ManifestError(DataError):
    """A manifest that cannot be read: a missing file, a bad line, a duplicate key."""


class BadSampleError(DataError):
    """A sample refused under ``data.bad_samples: error``."""


class AudioError(DataError):
    """Audio that an encoder cannot take: empty, NaN, multi-channel, wrong rate, too long, unreadable."""


class VideoError(AudioError):
    """A video that an encoder cannot take: no frames, wrong frame size, wrong frame rate."""


# -- training and scoring ------------------------------------------------------------------


class TrainingError(SlamError, RuntimeError):
    """A run that cannot go on as configured (non-finite loss, a precision the device lacks)."""


class MetricError(SlamError):
    """Base of the scoring errors."""


class MetricUnavailable(MetricError, RuntimeError):
    """A metric cannot be computed here (a missing package, Java or jar); the message says what to install."""

    def __init__(self, metric: str, reason: str):
        super().__init__(f"metric {metric!r} is unavailable here: {reason}")
        self.metric = metric
        self.reason = reason


class UnknownMetricError(MetricError, ValueError):
    """A metric name that is not in the registry; the message lists the known names."""
