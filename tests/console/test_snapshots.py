"""The look of the main screens (runs, run detail, system) at 80x24 and 160x48.

Deterministic: the run store comes from run_factory (fixed times and hosts, no live
writer), times are shown in UTC, the runs root is the relative ``runs`` inside the test's
working directory, and the System screen is given one fixed sample instead of sampling
this machine. Update with ``pytest tests/console/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from run_factory import BASE_TIME, make_run, system_record
from textual.widgets import DataTable
from textual.worker import WorkerCancelled

from voltx.console.app import VoltxConsole
from voltx.console.screens.system import SystemScreen

SIZES = [(80, 24), (160, 48)]
RUNS = Path("runs")  # relative: the autouse fixture chdirs into tmp_path, so no tmp path is drawn


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def store(tmp_path) -> Path:
    """Six runs, one per ending, with alerts, corrupt tails and a run without telemetry."""
    make_run(RUNS, "f1", status="finished", steps=50, alerts=2, created_at=BASE_TIME)
    make_run(RUNS, "f2", status="failed", steps=20, created_at=BASE_TIME + 3600, system=False, rar=False)
    make_run(RUNS, "f1", status="preempted", steps=30, alerts=1, created_at=BASE_TIME + 7200)
    make_run(RUNS, "f3", status="stale", steps=12, created_at=BASE_TIME + 10800, corrupt_tail=True)
    make_run(RUNS, "d1", status="diverged", steps=8, created_at=BASE_TIME + 14400, deliverables=False)
    make_run(RUNS, "ja", status="finished", steps=40, created_at=BASE_TIME + 18000, format_version=99)
    return RUNS


class FixedSampler:
    """The System screen's sampler replaced by one recorded sample (two GPUs, one run process)."""

    def __init__(self, pid: int | None = 4242):
        gib = 1024**3
        self.record = system_record(BASE_TIME, pid)
        second = dict(self.record["gpus"][0], index=1, util=12, mem_used=2 * gib, temp=38, power_w=96.5, processes=[])
        self.record["gpus"] = [self.record["gpus"][0], second]

    def sample(self) -> dict:
        return dict(self.record)

    def close(self) -> None:
        pass


async def settle(pilot, until=lambda app: True) -> None:
    """Let the scan/sample workers finish and the screen redraw."""
    for _ in range(100):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # an exclusive worker replaced by a newer one (a sample tick meanwhile): wait again
            pass
        await pilot.pause(0.02)
        if until(pilot.app):
            break
    await pilot.pause(0.1)


def rows_loaded(n: int):
    def check(app) -> bool:
        tables = list(app.screen.query(DataTable))
        return bool(tables) and tables[0].row_count >= n
    return check


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(snap_compare, store, size):
    app = VoltxConsole([store], poll_s=30)

    async def before(pilot):
        await settle(pilot, rows_loaded(6))

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_detail_screen(snap_compare, store, size):
    run = sorted((store / "f1").iterdir())[0]  # the finished run with alerts
    app = VoltxConsole([store], run=run, poll_s=30)

    async def before(pilot):
        await settle(pilot, lambda app: getattr(app.screen, "_loaded", True))

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_system_screen(snap_compare, store, size):
    app = VoltxConsole([store], poll_s=30)

    async def before(pilot):
        await settle(pilot, rows_loaded(6))
        screen = SystemScreen([store], sampler=FixedSampler())
        await pilot.app.push_screen(screen)
        await settle(pilot, lambda app: screen.snapshot is not None)

    assert snap_compare(app, terminal_size=size, run_before=before)
