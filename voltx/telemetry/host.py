"""Host telemetry through psutil: CPU, RAM, disk free of the runs root, and the run process.

``cpu_percent`` is non-blocking: psutil measures since the previous call, so the probe
primes it once at construction and each sample then covers the interval since the last.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _existing(path: Path) -> Path:
    """The path itself or its nearest existing parent (a runs root may not exist yet)."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(os.sep)


class HostProbe:
    def __init__(self, disk_path: Path, pid: int | None = None):
        import psutil  # lazily, so importing voltx.telemetry stays cheap

        self._psutil = psutil
        self.disk_path = Path(disk_path)
        psutil.cpu_percent(interval=None)  # prime: the first real sample then has a baseline
        self._proc: Any = None
        if pid is not None:
            try:
                self._proc = psutil.Process(pid)
                self._proc.cpu_percent(interval=None)
            except psutil.Error:
                self._proc = None

    def sample(self) -> dict[str, Any]:
        psutil = self._psutil
        mem = psutil.virtual_memory()
        disk = psutil.disk_usage(str(_existing(self.disk_path)))
        return {
            "cpu_percent": float(psutil.cpu_percent(interval=None)),
            "ram_used": int(mem.total - mem.available),  # what `free` calls used, page cache excluded
            "ram_total": int(mem.total),
            "disk_path": str(self.disk_path),
            "disk_free": int(disk.free),
            "disk_total": int(disk.total),
            "proc": self._process(),
        }

    def _process(self) -> dict[str, Any] | None:
        if self._proc is None:
            return None
        try:
            with self._proc.oneshot():
                return {"pid": self._proc.pid, "rss": int(self._proc.memory_info().rss), "cpu_percent": float(self._proc.cpu_percent(interval=None))}
        except self._psutil.Error:  # the process ended (or is a zombie): no stats to give
            return None

    def alive(self) -> bool:
        """Whether the watched process still runs (a zombie counts as gone; pid reuse is
        caught by psutil's creation-time check)."""
        if self._proc is None:
            return False
        try:
            return self._proc.is_running() and self._proc.status() != self._psutil.STATUS_ZOMBIE
        except self._psutil.Error:
            return False
