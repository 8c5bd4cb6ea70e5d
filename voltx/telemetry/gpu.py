"""Per-GPU telemetry through NVML (package nvidia-ml-py, module ``pynvml``).

NVML is initialised once and device handles are cached: a sample is a handful of
driver queries, cheap enough for 1 Hz. Nothing here may crash a sampler: no driver (or
no pynvml) gives no GPUs plus a reason, and a query a device does not support gives
None for that field only.
"""

from __future__ import annotations

from typing import Any, Callable


def _no_driver_reason(exc: BaseException, nvml: Any) -> str:
    """A sentence a user can act on, for the errors that mean "no usable NVIDIA driver"."""
    kinds = {
        "NVMLError_LibraryNotFound": "no NVIDIA driver: the NVML library (libnvidia-ml.so.1) was not found",
        "NVMLError_DriverNotLoaded": "no NVIDIA driver: the driver is not loaded (nvidia kernel module not running)",
        "NVMLError_NoPermission": "no permission to query the NVIDIA driver",
    }
    for name, reason in kinds.items():
        cls = getattr(nvml, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return reason
    return f"NVML unavailable: {exc}"


class GpuProbe:
    """Samples every GPU NVML sees. ``nvml`` is the pynvml module (tests pass a fake)."""

    def __init__(self, nvml: Any = None):
        self._nvml = nvml
        self._handles: list[Any] | None = None
        self._names: list[str] = []
        self._limits: list[float | None] = []
        self.error: str | None = None  # set once when NVML cannot start; sampling then stops trying

    def _start(self) -> bool:
        if self._handles is not None:
            return True
        if self.error is not None:
            return False
        if self._nvml is None:
            try:
                import pynvml  # lazily: the sampler must import fast and without it when unused
            except ImportError:
                self.error = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
                return False
            self._nvml = pynvml
        nvml = self._nvml
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # NVMLError subclasses, or OSError from a broken library
            self.error = _no_driver_reason(exc, nvml)
            return False
        self._handles = handles
        # Name and power limit do not change during a run: read them once.
        self._names = [self._field(lambda h=h: _text(nvml.nvmlDeviceGetName(h)), []) or f"GPU {i}" for i, h in enumerate(handles)]
        self._limits = [self._field(lambda h=h: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0, []) for h in handles]
        return True

    def _field(self, query: Callable[[], Any], errors: list[str]) -> Any:
        """One NVML query; None when it fails. Unsupported is normal (consumer cards, MIG);
        any other failure is also noted in ``errors`` so the record says why."""
        try:
            return query()
        except Exception as exc:
            not_supported = getattr(self._nvml, "NVMLError_NotSupported", None)
            if not (isinstance(not_supported, type) and isinstance(exc, not_supported)):
                errors.append(str(exc) or type(exc).__name__)
            return None

    def sample(self) -> tuple[list[dict], str | None]:
        """(one dict per GPU, an error message or None)."""
        if not self._start():
            return [], self.error
        nvml = self._nvml
        errors: list[str] = []
        gpus = []
        for index, handle in enumerate(self._handles or []):
            mem = self._field(lambda: nvml.nvmlDeviceGetMemoryInfo(handle), errors)
            util = self._field(lambda: nvml.nvmlDeviceGetUtilizationRates(handle), errors)
            gpus.append(
                {
                    "index": index,
                    "name": self._names[index],
                    "util": float(util.gpu) if util is not None else None,
                    "mem_used": int(mem.used) if mem is not None else None,
                    "mem_total": int(mem.total) if mem is not None else None,
                    "temp": self._field(lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)), errors),
                    "power_w": self._field(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, errors),
                    "power_limit_w": self._limits[index],
                    "processes": self._processes(handle, errors),
                }
            )
        return gpus, ("; ".join(dict.fromkeys(errors)) if errors else None)

    def _processes(self, handle: Any, errors: list[str]) -> list[dict]:
        """Compute and graphics processes on the device, one entry per pid."""
        found: dict[int, int | None] = {}
        for query in (self._nvml.nvmlDeviceGetComputeRunningProcesses, self._nvml.nvmlDeviceGetGraphicsRunningProcesses):
            for proc in self._field(lambda q=query: q(handle), errors) or []:
                used = getattr(proc, "usedGpuMemory", None)  # None when NVML cannot tell (MIG, WDDM)
                pid = int(proc.pid)
                if found.get(pid) is None:
                    found[pid] = int(used) if used is not None else None
        return [{"pid": pid, "mem_used": used} for pid, used in found.items()]

    def close(self) -> None:
        if self._handles is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass  # shutting down a dying driver must not fail the sidecar's exit
            self._handles = None


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
