"""Everything the run-detail view shows about one run, read incrementally.

``RunData.refresh()`` reads only bytes appended since the last call to metrics.jsonl
(``MetricSeries``), events.jsonl and stdout.log, and re-reads run.json, config.toml and
the checkpoint listing only when they change. Event kinds it groups (docs/console.md):
evaluation, deliverable, alert, checkpoint, rar, resumed, end. Lines are read through the run
store's record types (:mod:`voltx.runs.records`, as `voltx report` reads them): a line that is
not a record of its kind (corrupt JSON, ``"passed": "maybe"``) is skipped and counted, a
half-written last line is left for the next read, missing files are empty states.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from voltx.console.data import _stat_key
from voltx.console.series import MetricSeries
from voltx.runs.checkpoints import committed
from voltx.runs.jsonl import read_jsonl
from voltx.runs.records import Alert, Checkpoint, Deliverable, End, Evaluation, Event, Manifest, Resumed, parse_event
from voltx.runs.layout import RunManifest, RunPaths, load_manifest
from voltx.runs.store import NEWER_FORMAT, effective_status

LOG_LINES = 500


@dataclass
class Verdict:
    """A deliverable: the final verdict if there is one, and the values successive evaluations gave."""

    metric: str
    op: str | None = None
    threshold: float | None = None
    value: float | None = None
    passed: bool | None = None
    description: str | None = None
    history: list[float] = field(default_factory=list)

    @property
    def trend(self) -> str:
        """↑ / ↓ / → from the last two evaluations (what the user watches between epochs)."""
        if len(self.history) < 2:
            return "-"
        a, b = self.history[-2], self.history[-1]
        return "↑" if b > a else "↓" if b < a else "→"


class RunData:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.paths = RunPaths(self.dir)
        self.series = MetricSeries(self.paths.metrics)
        self.manifest: RunManifest = RunManifest(Manifest(), missing=True)
        """run.json, checked (``manifest.record``: its fields; ``manifest.problem``: why they are unset)."""
        self.status = "unknown"
        self.evaluations: list[Evaluation] = []
        self.verdicts: dict[str, Verdict] = {}
        self.alerts: list[Alert] = []
        self.checkpoint_events: list[Checkpoint] = []
        self.rar: list[dict] = []
        """rar events as written (the RAR panel checks the fields it draws)."""
        self.ends: list[End] = []
        self.resumes: list[Resumed] = []
        self.event_corrupt: list[int] = []
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.log_total = 0
        """Lines read from stdout.log so far (the view appends only ``log_total - shown``)."""
        self.config_text: str | None = None
        self.checkpoints: list[Path] = []
        self._events_at = (0, 1)
        self._log_at = 0
        self._stats: dict[str, tuple | None] = {}

    # -- state ---------------------------------------------------------------------------
    @property
    def problem(self) -> str | None:
        return NEWER_FORMAT if self.manifest.newer else self.manifest.problem

    @property
    def read_only(self) -> bool:
        return self.manifest.newer

    @property
    def corrupt_count(self) -> int:
        return len(self.series.corrupt_lines) + len(self.event_corrupt)

    @property
    def has_rar(self) -> bool:
        return bool(self.rar) or "rar/iterations_mean" in self.series.columns

    # -- reading -------------------------------------------------------------------------
    def _changed(self, name: str, path: Path) -> bool:
        key = _stat_key(path)
        if self._stats.get(name, ()) == key:
            return False
        self._stats[name] = key
        return True

    def refresh(self, metrics: bool = True) -> bool:
        """Read what is new; True when anything the view shows changed."""
        changed = False
        if self._changed("manifest", self.paths.manifest):
            read = load_manifest(self.dir)
            self.manifest = self.manifest if read.missing and not self.manifest.missing else read
            changed = True
        status = effective_status(self.dir, self.manifest)
        changed |= status != self.status
        self.status = status
        if metrics:
            changed |= self.series.refresh()
        changed |= self._read_events()
        changed |= self._read_log()
        if self._changed("config", self.paths.config):
            try:
                self.config_text = self.paths.config.read_text(encoding="utf-8", errors="replace")
            except OSError:
                self.config_text = None
            changed = True
        # COMMITTED lands inside step-N after the rename, so a live run's listing is re-read each time.
        if self._changed("checkpoints", self.paths.checkpoints) or status == "running":
            self.checkpoints = committed(self.paths.checkpoints) if self.paths.checkpoints.is_dir() else []
            changed = True
        return changed

    def _read_events(self) -> bool:
        offset, line = self._events_at
        got = read_jsonl(self.paths.events, offset=offset, first_line=line, parse=parse_event)
        self._events_at = (got.offset, got.next_line)
        self.event_corrupt.extend(got.corrupt_lines)
        for ev in got.records:
            self._add_event(ev)
        return bool(got.records or got.corrupt_lines)

    def _add_event(self, ev: Event) -> None:
        if isinstance(ev, Evaluation):
            self.evaluations.append(ev)
            for name, value in ev.metrics.items():
                if value is not None:
                    self.verdicts.setdefault(name, Verdict(name)).history.append(float(value))
        elif isinstance(ev, Deliverable):
            v = self.verdicts.setdefault(ev.metric, Verdict(ev.metric))
            v.op, v.threshold, v.value, v.passed, v.description = ev.op, ev.threshold, ev.value, ev.passed, ev.description
        elif isinstance(ev, Alert):
            self.alerts.append(ev)
        elif isinstance(ev, Checkpoint):
            self.checkpoint_events.append(ev)
        elif isinstance(ev, End):
            self.ends.append(ev)
        elif isinstance(ev, Resumed):
            self.resumes.append(ev)
        elif ev.kind == "rar":
            self.rar.append(ev.to_dict())

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

    # -- views ---------------------------------------------------------------------------
    def deliverables(self) -> list[Verdict]:
        """Declared deliverables first (they have a threshold), then other evaluated metrics."""
        return sorted(self.verdicts.values(), key=lambda v: (v.op is None, v.metric))

    def checkpoint_rows(self) -> list[tuple[int, str, str]]:
        """(step, directory name, seconds to write) for committed checkpoints, newest first."""
        seconds = {e.step: e.seconds for e in self.checkpoint_events}
        rows = []
        for p in self.checkpoints:
            step = int(p.name.split("-", 1)[1])
            s = seconds.get(step)
            rows.append((step, p.name, "-" if s is None else f"{s:.2f}s"))
        return sorted(rows, reverse=True)
