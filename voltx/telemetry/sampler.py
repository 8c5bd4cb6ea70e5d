"""One telemetry sample: host (psutil) plus GPUs (NVML), as one ``system.jsonl`` record.

The record schema (the console and docs/telemetry.md depend on it)::

    {"time", "host", "cpu_percent", "ram_used", "ram_total", "disk_path", "disk_free",
     "disk_total", "proc": {"pid", "rss", "cpu_percent"} | null,
     "gpus": [{"index", "name", "util", "mem_used", "mem_total", "temp", "power_w",
               "power_limit_w", "processes": [{"pid", "mem_used"}]}],
     "gpu_error": str | null}

Import-light: no torch, no textual (a subprocess test proves it).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from voltx.telemetry.gpu import GpuProbe
from voltx.telemetry.host import HostProbe


class Sampler:
    """Samples this machine; ``pid`` is the process whose RSS and CPU are recorded as ``proc``."""

    def __init__(self, disk_path: Path, pid: int | None = None, *, nvml: Any = None):
        self.host = HostProbe(Path(disk_path), pid)
        self.gpu = GpuProbe(nvml)
        self.hostname = socket.gethostname()

    def sample(self) -> dict[str, Any]:
        record: dict[str, Any] = {"time": round(time.time(), 3), "host": self.hostname}
        record.update(self.host.sample())
        gpus, error = self.gpu.sample()
        record["gpus"] = gpus
        record["gpu_error"] = error
        return record

    def watched_alive(self) -> bool:
        return self.host.alive()

    def close(self) -> None:
        self.gpu.close()
