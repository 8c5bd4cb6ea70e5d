"""A fake ``pynvml`` module: two GPUs with processes, one query each GPU cannot answer.

Shaped like nvidia-ml-py: NVMLError subclasses per error code, handles from
nvmlDeviceGetHandleByIndex, milliwatts for power, structs with .used/.total/.gpu/.pid.
"""

from __future__ import annotations

import types
from types import SimpleNamespace


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_DriverNotLoaded(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


GIB = 1024**3


def make(*, init_error: Exception | None = None, lost_power: bool = False) -> types.ModuleType:
    gpus = [
        {"name": b"NVIDIA H100 80GB HBM3", "util": 87, "used": 60 * GIB, "total": 80 * GIB, "temp": 71, "power": 612_500, "limit": 700_000,
         "compute": [SimpleNamespace(pid=4242, usedGpuMemory=59 * GIB)], "graphics": []},
        # The second card reports no temperature (NotSupported) and a process whose memory NVML cannot tell.
        {"name": "NVIDIA A10", "util": 3, "used": 1 * GIB, "total": 24 * GIB, "temp": None, "power": 30_000, "limit": 150_000,
         "compute": [SimpleNamespace(pid=5151, usedGpuMemory=None)], "graphics": [SimpleNamespace(pid=777, usedGpuMemory=256 * 1024**2)]},
    ]
    m = types.ModuleType("pynvml")
    m.NVMLError, m.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    m.NVMLError_LibraryNotFound, m.NVMLError_DriverNotLoaded = NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded
    m.NVML_TEMPERATURE_GPU = 0
    m.calls = {"init": 0, "shutdown": 0, "handles": 0}

    def init():
        m.calls["init"] += 1
        if init_error is not None:
            raise init_error

    def handle(i):
        m.calls["handles"] += 1
        return gpus[i]

    def temperature(h, sensor):
        assert sensor == 0
        if h["temp"] is None:
            raise NVMLError_NotSupported("Not Supported")
        return h["temp"]

    def power(h):
        if lost_power:
            raise NVMLError_GpuIsLost("GPU is lost")
        return h["power"]

    m.nvmlInit = init
    m.nvmlShutdown = lambda: m.calls.__setitem__("shutdown", m.calls["shutdown"] + 1)
    m.nvmlDeviceGetCount = lambda: len(gpus)
    m.nvmlDeviceGetHandleByIndex = handle
    m.nvmlDeviceGetName = lambda h: h["name"]
    m.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=h["util"], memory=0)
    m.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=h["used"], total=h["total"], free=h["total"] - h["used"])
    m.nvmlDeviceGetTemperature = temperature
    m.nvmlDeviceGetPowerUsage = power
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: h["limit"]
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: h["compute"]
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: h["graphics"]
    return m
