"""Errors of the data pipeline; every message names the file (and line, for manifests) and the fix.

The classes are members of the one error family (:mod:`slam_core.errors`).
"""

from __future__ import annotations

from slam_core.errors import AudioError, BadSampleError, DataError, ManifestError


class AudioFileError(AudioError):
    """An audio file that cannot be used: missing, unreadable, empty, a segment past its end."""


SKIP_HINT = "set data.bad_samples: skip to skip such samples"

__all__ = ["SKIP_HINT", "AudioFileError", "BadSampleError", "DataError", "ManifestError"]
