"""Errors of the data pipeline; every message names the file (and line, for manifests) and the fix."""

from __future__ import annotations

from slam_core.audio import AudioError


class DataError(ValueError):
    """Base of the data pipeline's errors."""


class ManifestError(DataError):
    """A manifest that cannot be read: a missing file, a bad line, a duplicate key."""


class AudioFileError(AudioError):
    """An audio file that cannot be used: missing, unreadable, empty, a segment past its end."""


class BadSampleError(DataError):
    """A sample refused under ``data.bad_samples: error``."""


SKIP_HINT = "set data.bad_samples: skip to skip such samples"
