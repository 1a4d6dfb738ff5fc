"""Checks of a dataset's folder layout, with errors that say what was expected and where to get it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Audio file extensions tried, in order, when a dataset does not fix one.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class PrepError(Exception):
    """A dataset layout or table that a prepare script cannot use; the message names the path and the fix."""


def require_dir(path: str | Path, what: str, hint: str) -> Path:
    """``path`` as a :class:`Path` if it is a folder, else :class:`PrepError` naming ``what`` and ``hint``."""
    path = Path(path)
    if not path.is_dir():
        raise PrepError(f"{what} not found: {path} is not a folder; {hint}")
    return path


def require_file(path: str | Path, what: str, hint: str) -> Path:
    """``path`` as a :class:`Path` if it is a file, else :class:`PrepError` naming ``what`` and ``hint``."""
    path = Path(path)
    if not path.is_file():
        raise PrepError(f"{what} not found: {path} does not exist; {hint}")
    return path


def find_audio(folders: Sequence[Path], stems: Sequence[str], extensions: Sequence[str] = AUDIO_EXTENSIONS):
    """The first existing ``folder/stem+extension`` (folders, then stems, then extensions, in order), or None."""
    for folder in folders:
        for stem in stems:
            for extension in extensions:
                candidate = folder / f"{stem}{extension}"
                if candidate.is_file():
                    return candidate
    return None
