"""Everything the run-detail view shows about one run, read incrementally.

``RunData.refresh()`` reads only bytes appended since the last call to metrics.jsonl
(``MetricSeries``), events.jsonl and stdout.log, and re-reads run.json, config.toml and
the checkpoint listing only when they change. Event kinds it groups (docs/console.md):
evaluation, deliverable, alert, checkpoint, rar, resumed, end. Lines are read through the run
store's record types (:mod:`voltx.runs.records`, as `voltx report` reads them): a line that is
not a record of its kind (corrupt JSON, ``"passed": "maybe"``) is skipped and counted, a
half-written last line is left for the next read, missing files are empty states.

``RunData`` is the reader a worker thread owns and mutates; the screen never touches it. After
each read the worker takes ``RunData.snapshot()``, a frozen :class:`RunView`, and hands it to the
UI thread, which only swaps its reference (as the runs screen swaps frozen ``RunSummary`` rows):
a redraw never sees a half-updated run. A snapshot copies the small lists (alerts, the log tail)
only when they changed and the metric columns never (:class:`~voltx.console.series.SeriesView`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from voltx.console.data import _stat_key
from voltx.console.series import EMPTY, MetricSeries, SeriesView
from voltx.runs.checkpoints import committed
from voltx.runs.jsonl import read_jsonl
from voltx.runs.records import Alert, Checkpoint, Deliverable, Evaluation, Event, Manifest, parse_event
from voltx.runs.layout import RunManifest, RunPaths, load_manifest
from voltx.runs.store import NEWER_FORMAT, effective_status

LOG_LINES = 500


@dataclass(frozen=True)
class Verdict:
    """A deliverable: the final verdict if there is one, and the values successive evaluations gave."""

    metric: str
    op: str | None = None
    threshold: float | None = None
    value: float | None = None
    passed: bool | None = None
    description: str | None = None
    history: tuple[float, ...] = ()
    baseline: float | None = None
    """The strongest no-model baseline's value (``baseline_metric``); None before baselines were recorded."""
    baseline_metric: str | None = None
    baselines: Mapping[str, float | None] | None = None
    ablations: Mapping[str, float | None] | None = None
    margin: float | None = None
    beat_baseline: bool | None = None
    reason: str | None = None
    """Why the verdict failed, as the run recorded it."""

    @property
    def trend(self) -> str:
        """↑ / ↓ / → from the last two evaluations (what the user watches between epochs)."""
        if len(self.history) < 2:
            return "-"
        a, b = self.history[-2], self.history[-1]
        return "↑" if b > a else "↓" if b < a else "→"


@dataclass(frozen=True, eq=False)
class RunView:
    """One moment of a run as the detail screen draws it; built by the worker, never changed.

    Its tuples hold the record objects the reader parsed; nothing mutates a record after parsing."""

    dir: Path
    paths: RunPaths
    series: SeriesView = EMPTY
    manifest: RunManifest = RunManifest(Manifest(), missing=True)
    """run.json, checked (``manifest.record``: its fields; ``manifest.problem``: why they are unset)."""
    status: str = "unknown"
    verdicts: tuple[Verdict, ...] = ()
    """Declared deliverables first (they have a threshold), then other evaluated metrics."""
    alerts: tuple[Alert, ...] = ()
    latest_rar: Mapping[str, Any] | None = None
    """The last rar event as written (the RAR panel checks the fields it draws)."""
    checkpoints: tuple[tuple[int, str, str], ...] = ()
    """(step, directory name, seconds to write) for committed checkpoints, newest first."""
    log: tuple[str, ...] = ()
    """The last ``LOG_LINES`` lines of stdout.log."""
    log_total: int = 0
    """Lines read from stdout.log so far (the view appends only ``log_total - shown``)."""
    config_text: str | None = None
    event_corrupt: int = 0

    @property
    def problem(self) -> str | None:
        return NEWER_FORMAT if self.manifest.newer else self.manifest.problem

    @property
    def read_only(self) -> bool:
        return self.manifest.newer

    @property
    def corrupt_count(self) -> int:
        return len(self.series.corrupt_lines) + self.event_corrupt


class RunData:
    """The incremental reader of one run, owned by one worker thread; screens get ``snapshot()``."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.paths = RunPaths(self.dir)
        self.series = MetricSeries(self.paths.metrics)
        self.manifest: RunManifest = RunManifest(Manifest(), missing=True)
        self.status = "unknown"
        self.verdicts: dict[str, Verdict] = {}
        self.alerts: list[Alert] = []
        self.checkpoint_seconds: dict[int, float | None] = {}
        self.latest_rar: Mapping[str, Any] | None = None
        self.event_corrupt = 0
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_total = 0
        self.config_text: str | None = None
        self.checkpoints: list[Path] = []
        self._events_at = (0, 1)
        self._log_at = 0
        self._stats: dict[str, tuple | None] = {}
        self._view = RunView(self.dir, self.paths)
        self._stale: set[str] = set()  # parts of the view to rebuild: "events", "log", "checkpoints", "other"
        self._declared = False

    def snapshot(self) -> RunView:
        """What has been read so far, frozen (the same object while nothing new was read)."""
        stale, self._stale = self._stale, set()
        series = self.series.snapshot()
        if not stale and series is self._view.series:
            return self._view
        changes: dict[str, Any] = {"series": series}
        if "other" in stale:
            changes.update(manifest=self.manifest, status=self.status, config_text=self.config_text)
        if "events" in stale:
            changes.update(verdicts=tuple(sorted(self.verdicts.values(), key=lambda v: (v.op is None, v.metric, v.threshold or 0.0))),
                           alerts=tuple(self.alerts), latest_rar=self.latest_rar, event_corrupt=self.event_corrupt)
        if "log" in stale:
            changes.update(log=tuple(self.log), log_total=self.log_total)
        if stale & {"checkpoints", "events"}:
            changes.update(checkpoints=self._checkpoint_rows())
        self._view = replace(self._view, **changes)
        return self._view

    # -- reading -------------------------------------------------------------------------
    def _changed(self, name: str, path: Path) -> bool:
        key = _stat_key(path)
        if self._stats.get(name, ()) == key:
            return False
        self._stats[name] = key
        return True

    def refresh(self, metrics: bool = True) -> bool:
        """Read what is new; True when anything the view shows changed."""
        if self._changed("manifest", self.paths.manifest):
            read = load_manifest(self.dir)
            self.manifest = self.manifest if read.missing and not self.manifest.missing else read
            self._stale.add("other")
            if not self._declared and self.manifest.record.phase:
                self._declare(self.manifest.record.phase)
        status = effective_status(self.dir, self.manifest)
        if status != self.status:
            self.status = status
            self._stale.add("other")
        if metrics:
            self.series.refresh()
        if self._read_events():
            self._stale.add("events")
        if self._read_log():
            self._stale.add("log")
        if self._changed("config", self.paths.config):
            try:
                self.config_text = self.paths.config.read_text(encoding="utf-8", errors="replace")
            except OSError:
                self.config_text = None
            self._stale.add("other")
        # COMMITTED lands inside step-N after the rename, so a live run's listing is re-read each time.
        if self._changed("checkpoints", self.paths.checkpoints) or status == "running":
            listed = committed(self.paths.checkpoints) if self.paths.checkpoints.is_dir() else []
            if listed != self.checkpoints:
                self.checkpoints = listed
                self._stale.add("checkpoints")
        return bool(self._stale) or self.series.snapshot() is not self._view.series

    def _declare(self, phase: str) -> None:
        """The deliverables the run's phase declares, as pending rows with their targets, so a live run
        shows what it will be judged on; the run's own verdicts replace them. A phase whose plugin is
        not loaded here declares nothing (the run's verdicts still show)."""
        from voltx.plugins import load_plugins

        self._declared = True
        spec = load_plugins().specs("phases").get(phase)
        for d in spec.deliverables if spec is not None else ():
            first = self.verdicts.get(d.metric)
            same = first is None or first.op is None or (first.op, first.threshold) == (d.op, d.threshold)
            key = d.metric if same else f"{d.metric} {d.op} {d.threshold}"  # a second target on one metric: as _add_event keys it
            known = self.verdicts.get(key, Verdict(d.metric))
            if known.op is None:
                self.verdicts[key] = replace(known, op=d.op, threshold=d.threshold, description=d.description)
        self._stale.add("events")

    def _read_events(self) -> bool:
        offset, line = self._events_at
        got = read_jsonl(self.paths.events, offset=offset, first_line=line, parse=parse_event)
        self._events_at = (got.offset, got.next_line)
        self.event_corrupt += len(got.corrupt_lines)
        for ev in got.records:
            self._add_event(ev)
        return bool(got.records or got.corrupt_lines)

    def _add_event(self, ev: Event) -> None:
        if isinstance(ev, Evaluation):
            for name, value in ev.metrics.items():
                if value is not None:
                    v = self.verdicts.get(name, Verdict(name))
                    self.verdicts[name] = replace(v, history=(*v.history, float(value)))
        elif isinstance(ev, Deliverable):
            judged = ev.verdict()  # the record's dicts: never mutated after parsing
            key, v = ev.metric, self.verdicts.get(ev.metric, Verdict(ev.metric))
            if v.op is not None and (v.op, v.threshold) != (judged["op"], judged["threshold"]):
                # another deliverable on the same metric (lvm: cosine >= 0.70 and >= 0.85): a row of its own
                key = f"{ev.metric} {judged['op']} {judged['threshold']}"
                v = self.verdicts.get(key, replace(v, **judged))
            self.verdicts[key] = replace(v, **judged)
        elif isinstance(ev, Alert):
            self.alerts.append(ev)
        elif isinstance(ev, Checkpoint):
            self.checkpoint_seconds[ev.step] = ev.seconds
        elif ev.kind == "rar":
            self.latest_rar = MappingProxyType(ev.to_dict())

    def _read_log(self) -> bool:
        try:
            size = self.paths.stdout.stat().st_size
        except OSError:
            return False
        if size < self._log_at:  # replaced or truncated: start again
            self._log_at = 0
            self.log.clear()
            self.log_total = 0
        if size == self._log_at:
            return False
        start = max(self._log_at, size - 256 * 1024)  # only the tail matters for a tail view
        with open(self.paths.stdout, "rb") as fh:
            fh.seek(start)
            data = fh.read(size - start)
        end = data.rfind(b"\n") + 1
        if not end:
            return False
        lines = data[:end].decode("utf-8", "replace").splitlines()
        if start > self._log_at and lines:
            lines = lines[1:]  # we started mid-line
        self.log.extend(lines)
        self.log_total += len(lines)
        self._log_at = start + end
        return True

    def _checkpoint_rows(self) -> tuple[tuple[int, str, str], ...]:
        rows = []
        for p in self.checkpoints:
            step = int(p.name.split("-", 1)[1])
            s = self.checkpoint_seconds.get(step)
            rows.append((step, p.name, "-" if s is None else f"{s:.2f}s"))
        return tuple(sorted(rows, reverse=True))
