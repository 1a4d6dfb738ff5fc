"""Checkpoint file helpers: safe reads that name the file, fsync, atomic directory publication."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError, RunFolderError


def load_torch(path: Path, what: str, safe_globals: Iterable[Any] = ()) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; any failure is a :class:`CheckpointError`."""
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (the {what} of the checkpoint)")
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling and zip errors have many types
        raise CheckpointError(f"{path}: cannot read the {what}: {type(exc).__name__}: {exc}") from exc


def load_safetensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file on the CPU; any failure is a :class:`CheckpointError`."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: missing (the {what} of the checkpoint)")
    try:
        return load_file(path, device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read the {what}: {type(exc).__name__}: {exc}") from exc


def fsync_tree(directory: Path) -> None:
    """Flush every file under ``directory``, then the directories themselves, to disk."""
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(root))


def fsync_dir(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def publish_dir(temporary: Path, final: Path) -> None:
    """Make the complete ``temporary`` directory appear as ``final`` in one rename (replacing it)."""
    fsync_tree(temporary)
    if final.exists():
        stale = final.with_name(f".stale-{final.name}")  # layout.STALE_PREFIX; layout.sweep restores it
        shutil.rmtree(stale, ignore_errors=True)
        os.rename(final, stale)
        os.rename(temporary, final)
        shutil.rmtree(stale, ignore_errors=True)
    else:
        os.rename(temporary, final)
    fsync_dir(final.parent)


def write_dir_atomically(out: Path, write: Callable[[Path], None], what: str) -> Path:
    """Run ``write`` on an empty staging folder beside ``out``, then make it ``out`` in one rename.

    A failed write leaves no staging folder; a storage failure is a :class:`RunFolderError` naming
    ``out``, ``what`` was being written and the fix.
    """
    staging = out.with_name(f".tmp-{out.name}")
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        write(staging)
        publish_dir(staging, out)
    except OSError as exc:
        raise RunFolderError(f"{out}: cannot write {what}: {write_failure(out, exc)}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename."""
    temporary = path.with_name(f".tmp-{path.name}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


#: What to do about a write that failed with these errors.
_WRITE_FIXES = {
    errno.ENOSPC: "no space is left on its device: free space there (or keep fewer checkpoints, train.keep_last)",
    errno.EDQUOT: "the disk quota is exceeded: free space there (or keep fewer checkpoints, train.keep_last)",
    errno.EROFS: "its file system is read-only: choose a writable folder",
    errno.EACCES: "permission denied: make it writable or choose another folder",
    errno.EPERM: "permission denied: make it writable or choose another folder",
    errno.ENOTDIR: "a file is where a folder belongs: move the file away or choose another folder",
    errno.EEXIST: "a file is where a folder belongs: move the file away or choose another folder",
}
#: Below this many free bytes a failed write is taken for a full disk (safetensors and torch.save
#: report it without an errno).
FULL_DISK_BYTES = 1 << 20


def write_failure(path: Path, exc: BaseException) -> str | None:
    """Why writing under ``path`` failed and what to fix, or ``None`` when ``exc`` is not a storage failure."""
    code = getattr(exc, "errno", None)
    if code in _WRITE_FIXES:
        return _WRITE_FIXES[code]
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        free = None
    if free is not None and free < FULL_DISK_BYTES:
        return _WRITE_FIXES[errno.ENOSPC]
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return None
