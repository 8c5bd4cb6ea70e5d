"""NVML sampling against a fake pynvml: fields, processes, unsupported fields, no driver."""

from __future__ import annotations

import sys

import fake_pynvml_gpus as fake_nvml
from voltx.telemetry.gpu import GpuProbe


def test_two_gpus_with_processes_and_an_unsupported_field(monkeypatch):
    nvml = fake_nvml.make()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)  # the probe imports pynvml itself
    probe = GpuProbe()
    gpus, error = probe.sample()
    assert error is None  # NotSupported is normal, not an error
    assert [g["index"] for g in gpus] == [0, 1]
    h100, a10 = gpus
    assert h100 == {
        "index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 87.0, "mem_used": 60 * fake_nvml.GIB, "mem_total": 80 * fake_nvml.GIB,
        "temp": 71.0, "power_w": 612.5, "power_limit_w": 700.0, "processes": [{"pid": 4242, "mem_used": 59 * fake_nvml.GIB}],
    }
    assert a10["name"] == "NVIDIA A10" and a10["temp"] is None and a10["power_w"] == 30.0
    assert a10["processes"] == [{"pid": 5151, "mem_used": None}, {"pid": 777, "mem_used": 256 * 1024**2}]


def test_init_once_and_handles_cached_across_samples():
    nvml = fake_nvml.make()
    probe = GpuProbe(nvml)
    for _ in range(5):
        probe.sample()
    assert nvml.calls["init"] == 1 and nvml.calls["handles"] == 2
    probe.close()
    assert nvml.calls["shutdown"] == 1


def test_a_failing_field_is_none_and_named_in_the_error():
    gpus, error = GpuProbe(fake_nvml.make(lost_power=True)).sample()
    assert all(g["power_w"] is None for g in gpus)
    assert all(g["mem_used"] is not None for g in gpus)  # only that field is lost
    assert error == "GPU is lost"


def test_no_driver_gives_no_gpus_and_a_clear_reason():
    for exc, words in ((fake_nvml.NVMLError_LibraryNotFound("NVML Shared Library Not Found"), "libnvidia-ml.so.1"),
                       (fake_nvml.NVMLError_DriverNotLoaded("Driver Not Loaded"), "driver is not loaded")):
        nvml = fake_nvml.make(init_error=exc)
        probe = GpuProbe(nvml)
        for _ in range(3):
            gpus, error = probe.sample()
            assert gpus == [] and "no NVIDIA driver" in error and words in error
        assert nvml.calls["init"] == 1  # no retry storm at 1 Hz
        probe.close()


def test_real_pynvml_without_a_driver_degrades():
    """On this machine (no NVIDIA driver) the real module fails to init: no crash, a reason."""
    gpus, error = GpuProbe().sample()
    if gpus:  # a machine with a driver: the records still have the schema
        assert all({"index", "name", "util", "mem_used", "processes"} <= set(g) for g in gpus)
    else:
        assert error and ("NVIDIA" in error or "NVML" in error or "nvidia-ml-py" in error)


def test_pynvml_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import then raises ImportError
    gpus, error = GpuProbe().sample()
    assert gpus == [] and "pip install nvidia-ml-py" in error
