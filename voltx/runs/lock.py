"""The writer lock: one live writer per run directory.

An exclusive ``flock`` on ``<run>/lock`` held for the writer process's lifetime. The
kernel drops it when the process dies (even on SIGKILL), so readers can tell a live run
from a stale one by trying a shared lock, and a resume never fights a dead writer.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from voltx.errors import RunLockedError


class RunLock:
    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise RunLockedError(
                f"run {self.path.parent} is being written by another process ({holder}). "
                "Watch it with `voltx logs -f`, or stop it first (SIGTERM) to resume it here."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info.get('pid')} on {info.get('host')}"
    except (OSError, ValueError):
        return "unknown process"


def lock_holder(run_dir: Path) -> str:
    """Who holds the run's writer lock, as "pid N on HOST" (what the holder wrote into it)."""
    try:
        fd = os.open(run_dir / "lock", os.O_RDONLY)
    except OSError:
        return "unknown process"
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def writer_alive(run_dir: Path) -> bool:
    """True while some process holds the run's writer lock (on this machine's filesystem)."""
    path = run_dir / "lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
