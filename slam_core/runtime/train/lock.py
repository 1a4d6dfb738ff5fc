"""An exclusive lock on a run folder for the whole run (an OS advisory lock: released when the process dies).

The lock is ``<run>/.slam-run.lock`` (held with :mod:`filelock`, ``flock`` on Unix); who holds
it is written to ``<run>/.slam-run.owner.json`` once it is held, so a second run on the same
folder fails at once with a :class:`~slam_core.errors.RunFolderError` naming the holder's pid
and host; the holder removes it when it lets go. A crashed holder leaves its owner file behind
but not the lock: the next run takes the lock and rewrites the owner file.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

import filelock

from slam_core.errors import RunFolderError
from slam_core.runtime.checkpoints.io import write_failure

LOCK_NAME = ".slam-run.lock"
OWNER_NAME = ".slam-run.owner.json"


class RunFolderLock:
    """``with RunFolderLock(run_dir, "slam train"):`` holds the run folder exclusively or raises at once."""

    def __init__(self, run_dir: str | Path, purpose: str = "slam train"):
        self.run_dir = Path(run_dir)
        self.purpose = purpose
        self._lock: filelock.BaseFileLock | None = None
        self._created = False

    def __enter__(self) -> RunFolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock without waiting; a :class:`RunFolderError` names the holder when it is taken."""
        self._created = _make_run_folder(self.run_dir)
        lock = filelock.FileLock(self.run_dir / LOCK_NAME, timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise RunFolderError(
                f"{self.run_dir}: the run folder is in use by {_describe_owner(self.run_dir)}; "
                "wait for that run to finish, stop it, or choose another run folder (--run-dir)"
            ) from None
        except OSError as exc:
            reason = write_failure(self.run_dir, exc)
            raise RunFolderError(f"{self.run_dir}: cannot lock the run folder: {reason}") from None
        self._lock = lock
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": self.purpose, "since": time.time()}
        # the lock holds without the note; a second run then names no pid
        with contextlib.suppress(OSError):
            (self.run_dir / OWNER_NAME).write_text(json.dumps(owner))

    def release(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (self.run_dir / OWNER_NAME).unlink()
            self._lock.release()
            self._lock = None
            if self._created:  # a run that wrote nothing leaves no folder behind
                with contextlib.suppress(OSError):
                    if [p.name for p in self.run_dir.iterdir()] == [LOCK_NAME]:
                        (self.run_dir / LOCK_NAME).unlink()
                        self.run_dir.rmdir()


def _make_run_folder(run_dir: Path) -> bool:
    """Create the run folder if need be; whether it was created."""
    existed = run_dir.is_dir()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunFolderError(f"{run_dir}: is a file, not a run folder; choose another run folder") from None
    except OSError as exc:
        raise RunFolderError(f"{run_dir}: cannot create the run folder: {write_failure(run_dir, exc)}") from None
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: is a file, not a run folder; choose another run folder")
    return not existed


def _describe_owner(run_dir: Path) -> str:
    try:
        owner = json.loads((run_dir / OWNER_NAME).read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(owner["since"])))
        return f"{owner['purpose']} (pid {owner['pid']} on host {owner['host']}, since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its pid is not recorded)"
