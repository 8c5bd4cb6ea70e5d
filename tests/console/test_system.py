"""The System screen against a fake NVML (2 GPUs, one process owned by a fixture run),
a fresh sidecar sample, and a machine without an NVIDIA driver."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import types

from run_factory import HOST, hold_lock, make_run, system_record
from textual.app import App
from textual.widgets import DataTable, Static

from voltx.console.screens.system import FRESH_S, SystemScreen
from voltx.console.testing import until

GIB = 1024**3
OTHER_PID = 999_999_1  # no such process: shown, owned by no run


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


def fake_pynvml(owner_pid: int, *, no_driver: bool = False) -> types.ModuleType:
    """The subset of pynvml voltx.telemetry.gpu calls: two GPUs; GPU 1 runs ``owner_pid``."""
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError
    m.NVMLError_LibraryNotFound = NVMLError_LibraryNotFound
    m.NVML_TEMPERATURE_GPU = 0
    ns = types.SimpleNamespace
    gpus = [
        dict(name=b"NVIDIA A100-SXM4-40GB", util=7, used=1 * GIB, total=40 * GIB, temp=41, power=61_000, limit=400_000, procs=[]),
        dict(name="NVIDIA A100-SXM4-40GB", util=98, used=30 * GIB, total=40 * GIB, temp=77, power=388_500, limit=400_000,
             procs=[ns(pid=owner_pid, usedGpuMemory=28 * GIB), ns(pid=OTHER_PID, usedGpuMemory=None)]),
    ]

    def init():
        if no_driver:
            raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: len(gpus)
    m.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    m.nvmlDeviceGetName = lambda h: h["name"]
    m.nvmlDeviceGetEnforcedPowerLimit = lambda h: h["limit"]
    m.nvmlDeviceGetMemoryInfo = lambda h: ns(used=h["used"], total=h["total"], free=h["total"] - h["used"])
    m.nvmlDeviceGetUtilizationRates = lambda h: ns(gpu=h["util"], memory=0)
    m.nvmlDeviceGetTemperature = lambda h, sensor: h["temp"]
    m.nvmlDeviceGetPowerUsage = lambda h: h["power"]
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: h["procs"]
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []
    return m


class Host(App):
    def __init__(self, screen):
        super().__init__()
        self._first = screen

    def on_mount(self) -> None:
        self.push_screen(self._first)


def drive(screen, check, size=(120, 40)):
    async def body():
        async with Host(screen).run_test(size=size) as pilot:
            await until(pilot, lambda: screen.snapshot is not None, "the first sample (from a worker thread)")
            await check(pilot, screen)

    asyncio.run(body())


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def test_fake_nvml_two_gpus_and_the_process_of_a_live_run_is_marked(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(os.getpid()))
    root = tmp_path / "runs"
    run = make_run(root, "f1", status="running", live_pid=os.getpid())  # its system.jsonl is from 2023: not fresh
    make_run(root, "f2", status="finished")

    async def check(pilot, screen):
        assert screen.snapshot.source is None
        assert "Sampled locally" in text(screen, "#system-source")
        gpus = rows(screen.query_one("#system-gpus", DataTable))
        assert [g[0] for g in gpus] == ["0", "1"]
        assert gpus[1][1] == "NVIDIA A100-SXM4-40GB"
        assert gpus[1][2] == "██████████ 98%" and gpus[1][3] == "████████░░ 30.0 GiB / 40.0 GiB"
        assert gpus[1][4:] == ["77°C", "388 W / 400 W"]
        procs = rows(screen.query_one("#system-procs", DataTable))
        assert procs == [["1", str(os.getpid()), "28.0 GiB", f"▶ f1/{run.name}"], ["1", str(OTHER_PID), "n/a", ""]]
        assert not screen.query_one("#system-gpu-error", Static).display
        host = text(screen, "#system-host")
        assert "CPU" in host and "RAM" in host and "free of" in host and str(root) in host

    with hold_lock(run):
        drive(SystemScreen([root]), check)


def test_at_80_columns_the_gpu_table_drops_its_bars_and_fits(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(os.getpid()))

    async def check(pilot, screen):
        table = screen.query_one("#system-gpus", DataTable)
        assert rows(table)[1][2:] == ["98%", "30.0 GiB / 40.0 GiB", "77°C", "388 W / 400 W"]
        assert table.virtual_size.width <= 80

    drive(SystemScreen([tmp_path]), check, size=(80, 24))


def test_a_fresh_sidecar_sample_is_shown_instead_of_sampling(tmp_path, monkeypatch):
    class Refuse:
        def sample(self):
            raise AssertionError("must not sample locally while a sidecar sample is fresh")

    root = tmp_path / "runs"
    run = make_run(root, "f1", status="running", live_pid=os.getpid(), system=False)
    now = time.time()
    with open(run / "system.jsonl", "w") as fh:
        fh.write(json.dumps(system_record(now - 60, os.getpid())) + "\n")  # old
        fh.write(json.dumps(system_record(now - 1.0, os.getpid())) + "\n")  # fresh
        fh.write('{"time": ')  # the sidecar is mid-write

    async def check(pilot, screen):
        assert screen.snapshot.source.dir == run
        assert 0.9 <= screen.snapshot.age_s < FRESH_S
        assert f"run f1/{run.name}" in text(screen, "#system-source")
        assert f"run process {os.getpid()}: RSS 3.0 GiB, CPU 99%" in text(screen, "#system-source")
        gpus = rows(screen.query_one("#system-gpus", DataTable))
        assert gpus[0][1] == "NVIDIA H100 80GB HBM3" and gpus[0][4:] == ["64°C", "512 W / 700 W"]
        procs = rows(screen.query_one("#system-procs", DataTable))
        assert procs == [["0", str(os.getpid()), "40.0 GiB", f"▶ f1/{run.name}"]]
        assert HOST in text(screen, "#system-host")  # the sample's host, not this machine's

    with hold_lock(run):
        drive(SystemScreen([root], sampler=Refuse()), check)


def test_stale_sample_of_a_dead_run_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(os.getpid()))
    root = tmp_path / "runs"
    run = make_run(root, "f1", status="stale", system=False)  # says running, nobody holds the lock
    (run / "system.jsonl").write_text(json.dumps(system_record(time.time() - 0.5)) + "\n")

    async def check(pilot, screen):
        assert screen.snapshot.source is None
        assert all(r[3] == "" for r in rows(screen.query_one("#system-procs", DataTable)))

    drive(SystemScreen([root]), check)


def test_no_driver_says_so_and_the_host_part_still_works(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(os.getpid(), no_driver=True))
    root = tmp_path / "missing-root"  # not created yet: disk free is of its nearest parent

    async def check(pilot, screen):
        note = text(screen, "#system-gpu-error")
        assert note.startswith("No NVIDIA driver/GPU: ") and "libnvidia-ml" in note
        assert not screen.query_one("#system-gpus", DataTable).display
        assert not screen.query_one("#system-procs", DataTable).display
        host = text(screen, "#system-host")
        assert "GiB free of" in host and "n/a" not in host
        await pilot.press("question_mark")
        assert pilot.app.screen.target is screen  # the help lists this screen's keys
        await pilot.press("escape")
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, SystemScreen)

    drive(SystemScreen([root]), check)


def test_samples_again_every_interval(tmp_path, monkeypatch):
    calls = []

    class Counting:
        def sample(self):
            calls.append(time.time())
            return {**system_record(1.0, None), "gpus": [], "gpu_error": "NVML unavailable: test"}

    async def check(pilot, screen):
        await pilot.pause(0.5)
        assert len(calls) >= 3

    drive(SystemScreen([tmp_path], sampler=Counting(), interval=0.1), check)


def test_a_failing_sample_is_shown_and_the_app_keeps_running(tmp_path):
    class Broken:
        def sample(self):
            raise OSError("disk went away")

    async def check(pilot, screen):
        await until(pilot, lambda: "Sampling failed" in text(screen, "#system-source"), "the failed sample")
        assert "Sampling failed: OSError: disk went away" in text(screen, "#system-source")
        assert pilot.app.is_running

    async def body():
        screen = SystemScreen([tmp_path], sampler=Broken(), interval=0.2)
        async with Host(screen).run_test(size=(120, 40)) as pilot:
            await check(pilot, screen)

    asyncio.run(body())


def test_a_fresh_sample_with_wrong_types_is_shown_as_n_a_not_a_crash(tmp_path):
    """A sidecar of another voltx version (or a hand-edited file) may write any JSON object."""

    class Refuse:
        def sample(self):
            raise AssertionError("the fresh sidecar sample must be used")

    root = tmp_path / "runs"
    run = make_run(root, "f1", status="running", live_pid=os.getpid(), system=False)
    bad = {"time": time.time() - 0.5, "host": "[bold]x", "cpu_percent": "a", "ram_used": None, "disk_path": "[/]",
           "proc": {"pid": "[red]", "rss": "big"},
           "gpus": [5, {"index": 0, "name": "[b]gpu", "util": "high", "processes": [7, {"pid": "x"}]}]}
    (run / "system.jsonl").write_text(json.dumps({"time": time.time() - 0.7, "gpus": 5}) + "\n" + json.dumps(bad) + "\n")

    async def check(pilot, screen):
        await pilot.pause(0.2)
        assert screen.snapshot.source.dir == run
        gpus = rows(screen.query_one("#system-gpus", DataTable))
        assert [g[1] for g in gpus] == ["[b]gpu"] and gpus[0][2].endswith(" n/a")  # the non-object entry is skipped
        assert "[bold]x" in text(screen, "#system-host") and "n/a" in text(screen, "#system-host")
        (run / "system.jsonl").write_text(json.dumps({"time": time.time(), "gpus": 5, "gpu_error": 3}) + "\n")
        await pilot.pause(1.5)
        assert isinstance(pilot.app.screen, SystemScreen)
        assert "NVML sees no GPU" in text(screen, "#system-gpu-error") or "3" in text(screen, "#system-gpu-error")

    with hold_lock(run):
        drive(SystemScreen([root], sampler=Refuse()), check)
