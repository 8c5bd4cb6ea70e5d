"""The System screen: GPUs (utilisation, VRAM, temperature, power, per-process VRAM with
the owning run marked) and the host (CPU, RAM, disk free of the runs root).

Where the numbers come from: the newest fresh (under ``FRESH_S`` seconds old) system.jsonl
sample written by the telemetry sidecar of a live run under the roots; when no run is
live (or its sidecar is silent) the screen samples this machine itself with the same
:class:`voltx.telemetry.Sampler`, once a second, in a worker thread. NVML handles stay
cached in that sampler between samples. No torch here: NVML answers everything.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState
from voltx.console.screens.handoff import to_ui

from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.runs.lock import writer_alive

FRESH_S = 5.0
"""A sidecar sample older than this is not shown as current (the run may be hung or gone)."""
GIB = 1024**3
WIDE = 110
"""Terminal columns from which the GPU table also draws bars (at 80 the numbers alone fit)."""


@dataclass(frozen=True)
class LiveRun:
    dir: Path
    label: str
    pid: int | None


@dataclass
class Snapshot:
    """What one refresh found: the sample, where it came from, and the live runs by pid."""

    sample: dict[str, Any]
    source: LiveRun | None  # None: sampled locally
    age_s: float
    runs_by_pid: dict[int, LiveRun]


def live_runs(roots: list[Path]) -> list[LiveRun]:
    """Runs under the roots whose writer holds its lock now (checked before reading run.json)."""
    found = []
    for root in roots:
        for run_dir in list_run_dirs(Path(root)):
            if not writer_alive(run_dir):
                continue
            manifest = load_manifest(run_dir).record  # damaged: no pid, so no process is marked as this run's
            label = f"{manifest.phase or run_dir.parent.name}/{manifest.id or run_dir.name}"
            found.append(LiveRun(run_dir, label, manifest.pid))
    return found


def fresh_sample(runs: list[LiveRun], now: float) -> tuple[dict, LiveRun, float] | None:
    """The newest sidecar sample of the live runs, if it is under FRESH_S seconds old."""
    from voltx.telemetry import read_latest_sample

    best = None
    for run in runs:
        sample = read_latest_sample(run.dir)
        t = sample.get("time") if sample else None
        if isinstance(t, (int, float)) and 0 <= now - t < FRESH_S and (best is None or t > best[0].get("time")):
            best = (sample, run, now - t)
    return best


def owning_run(pid: int, runs_by_pid: dict[int, LiveRun]) -> LiveRun | None:
    """The run whose process is ``pid`` or one of its ancestors (DDP workers are children)."""
    if pid in runs_by_pid:
        return runs_by_pid[pid]
    import psutil

    try:
        for parent in psutil.Process(pid).parents():
            if parent.pid in runs_by_pid:
                return runs_by_pid[parent.pid]
    except psutil.Error:  # not on this machine (a copied run store) or already gone
        pass
    return None


# --- formatting -----------------------------------------------------------------------------


def _objects(value: Any) -> list[dict]:
    """The dict entries of a list field; anything else in a sample (another writer's
    version, a hand-edited file) is skipped rather than crashing the screen."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(value: Any, default: str = "?") -> str:
    """A sample's string as literal text (a host or GPU name is not markup)."""
    return escape(str(value)) if value is not None else default


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def gib(value: Any) -> str:
    return f"{value / GIB:.1f} GiB" if _number(value) else "n/a"


def bar(fraction: float | None, width: int = 10) -> str:
    if fraction is None:
        return "·" * width
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def ratio(used: Any, total: Any) -> float | None:
    ok = _number(used) and _number(total) and total > 0
    return used / total if ok else None


def fmt(value: Any, unit: str, digits: int = 0) -> str:
    return f"{value:.{digits}f}{unit}" if _number(value) else "n/a"


def host_line(sample: dict) -> str:
    ram = ratio(sample.get("ram_used"), sample.get("ram_total"))
    disk_used = ratio(_minus(sample.get("disk_total"), sample.get("disk_free")), sample.get("disk_total"))
    cpu = sample.get("cpu_percent")
    return (
        f"[b]Host[/] {_text(sample.get('host'))}\n"
        f"CPU  {bar(cpu / 100 if _number(cpu) else None)} {fmt(cpu, '%', 1)}\n"
        f"RAM  {bar(ram)} {gib(sample.get('ram_used'))} / {gib(sample.get('ram_total'))}\n"
        f"Disk {bar(disk_used)} {gib(sample.get('disk_free'))} free of {gib(sample.get('disk_total'))}"
        f" at {_text(sample.get('disk_path'))}"
    )


def _minus(a: Any, b: Any) -> float | None:
    return a - b if _number(a) and _number(b) else None


def source_line(snap: Snapshot, interval: float) -> str:
    if snap.source is None:
        return f"Sampled locally every {interval:g} s (no live run's sidecar sample is fresh)"
    line = f"From the telemetry sidecar of run [b]{escape(snap.source.label)}[/] ({snap.age_s:.1f} s old)"
    proc = snap.sample.get("proc")
    if isinstance(proc, dict):
        line += f"; run process {_text(proc.get('pid'))}: RSS {gib(proc.get('rss'))}, CPU {fmt(proc.get('cpu_percent'), '%')}"
    return line


class SystemScreen(Screen):
    """Live GPU and host telemetry. ``sampler`` (anything with ``sample()``) and ``clock``
    replace the local :class:`voltx.telemetry.Sampler` and ``time.time`` (tests, snapshots)."""

    CSS_PATH = "system.tcss"
    HELP_TITLE = TITLE = "System"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("question_mark", "help", "Help")]

    def __init__(self, roots: list[Path] | tuple[Path, ...], *, sampler: Any = None,
                 clock: Callable[[], float] = time.time, interval: float = 1.0) -> None:
        super().__init__()
        self.roots = [Path(r) for r in roots] or [Path("runs")]
        self._sampler = sampler
        self._own_sampler = sampler is None
        self._clock = clock
        self.interval = interval
        self.snapshot: Snapshot | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="system-body"):
            yield Static("Sampling…", id="system-source")
            yield Static(id="system-gpu-error")
            yield DataTable(id="system-gpus", cursor_type="row", zebra_stripes=True)
            yield Static("GPU processes", classes="section", id="system-procs-title")
            yield DataTable(id="system-procs", cursor_type="row", zebra_stripes=True)
            yield Static(id="system-host")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#system-gpus", DataTable).add_columns("GPU", "name", "util", "VRAM used / total", "temp", "power")
        self.query_one("#system-procs", DataTable).add_columns("GPU", "pid", "VRAM", "run")
        self.collect()
        self.set_interval(self.interval, self.collect)

    def on_resize(self) -> None:
        if self.snapshot is not None:
            self.show(self.snapshot)

    def on_unmount(self) -> None:
        if self._own_sampler and self._sampler is not None:
            self._sampler.close()

    def collect(self) -> None:
        # exit_on_error=False: a failed sample (a vanished run dir, a driver error) is shown on
        # the screen by on_worker_state_changed and retried next tick; it must not end the app.
        self.run_worker(self._collect, thread=True, exclusive=True, group="system-sample", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "system-sample":
            error = event.worker.error
            self.query_one("#system-source", Static).update(
                f"[red]Sampling failed: {escape(f'{type(error).__name__}: {error}')}[/] (retrying every {self.interval:g} s)"
            )

    def _collect(self) -> None:
        """Worker thread: find live runs, prefer a fresh sidecar sample, else sample here."""
        runs = live_runs(self.roots)
        now = self._clock()
        found = fresh_sample(runs, now)
        if found is not None:
            sample, source, age = found
        else:
            if self._sampler is None:
                from voltx.telemetry import Sampler

                self._sampler = Sampler(self.roots[0])
            sample, source, age = self._sampler.sample(), None, 0.0
        by_pid = {r.pid: r for r in runs if r.pid is not None}
        to_ui(self, self.show, Snapshot(sample, source, age, by_pid))

    def show(self, snap: Snapshot) -> None:
        self.snapshot = snap
        sample = snap.sample
        self.query_one("#system-source", Static).update(source_line(snap, self.interval))
        self.query_one("#system-host", Static).update(host_line(sample))
        gpus = _objects(sample.get("gpus"))
        error = _text(sample.get("gpu_error"), "")
        note = self.query_one("#system-gpu-error", Static)
        if not gpus:
            note.update(f"[b]No NVIDIA driver/GPU:[/] {error or 'NVML sees no GPU'}")
        else:
            note.update(f"[yellow]NVML: {error}[/]" if error else "")
        note.display = bool(not gpus or error)

        table = self.query_one("#system-gpus", DataTable)
        procs = self.query_one("#system-procs", DataTable)
        table.clear()
        procs.clear()
        width = 10 if self.size.width >= WIDE else 0  # bars only where every column still fits
        for gpu in gpus:
            mem = ratio(gpu.get("mem_used"), gpu.get("mem_total"))
            util = gpu.get("util")
            table.add_row(
                Text(str(gpu.get("index"))), Text(str(gpu.get("name", "?"))),
                f"{bar(util / 100 if _number(util) else None, width)} {fmt(util, '%')}".strip(),
                f"{bar(mem, width)} {gib(gpu.get('mem_used'))} / {gib(gpu.get('mem_total'))}".strip(),
                fmt(gpu.get("temp"), "°C"),
                f"{fmt(gpu.get('power_w'), ' W')} / {fmt(gpu.get('power_limit_w'), ' W')}",
            )
            for proc in _objects(gpu.get("processes")):
                pid = proc.get("pid")
                run = owning_run(pid, snap.runs_by_pid) if isinstance(pid, int) else None
                procs.add_row(Text(str(gpu.get("index"))), Text(str(pid)), gib(proc.get("mem_used")), Text(f"▶ {run.label}") if run else "")
        table.display = bool(gpus)
        procs.display = bool(procs.row_count)
        self.query_one("#system-procs-title", Static).display = procs.display

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
