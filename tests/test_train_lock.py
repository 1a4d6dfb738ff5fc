"""The run-folder lock: one run per folder, released when its holder dies."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from slam_core.errors import RunFolderError
from slam_core.runtime.train.lock import RunFolderLock

HOLDER = """
import sys, time
from slam_core.runtime.train.lock import RunFolderLock
lock = RunFolderLock(sys.argv[1], "slam train")
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A process that holds the lock on ``tmp_path / 'run'``."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_second_run_is_refused_at_once_naming_the_holder(tmp_path, holder):
    started = time.monotonic()
    with pytest.raises(RunFolderError) as caught:
        RunFolderLock(tmp_path / "run").acquire()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"pid {holder.pid} on host {socket.gethostname()}" in message
    assert str(tmp_path / "run") in message and "--run-dir" in message


def test_the_lock_is_released_when_the_holder_is_killed(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with RunFolderLock(tmp_path / "run") as lock:
        assert lock.run_dir == tmp_path / "run"
    # released on exit: it can be taken again
    RunFolderLock(tmp_path / "run").acquire()


def test_a_file_where_the_run_folder_belongs_is_named(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    with pytest.raises(RunFolderError, match="is a file, not a run folder"):
        RunFolderLock(tmp_path / "run").acquire()
