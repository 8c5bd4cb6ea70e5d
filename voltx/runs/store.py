"""The run store: the writer a run process owns, and the reader everyone else uses.

The writer creates (or re-opens, on resume) the run directory, holds its lock, keeps
run.json current and appends to metrics/events/stdout through one buffered writer
thread. The reader never writes: ``voltx status/logs/report`` and the console only read.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields as declared_fields
from pathlib import Path
from typing import Any, TypeVar

from voltx import __version__
from voltx.errors import CantCreateError, UsageError
from voltx.runs.jsonl import (PARTIAL_LINE, BufferedWriter, JsonlRead, LineProblem, RecordError, SkippedLines, drop_superseded, dumps,
                              read_jsonl)
from voltx.runs.layout import FORMAT_VERSION, RunManifest, RunPaths, load_manifest, new_run_dir
from voltx.runs.lock import RunLock, writer_alive
from voltx.runs.records import EVENT_TYPES, Event, Manifest, Record, StepRecord, parse_event, parse_step
from voltx.runs.sink_feed import SinkFeed

E = TypeVar("E", bound=Event)

TERMINAL = {"finished", "failed", "preempted", "diverged", "interrupted"}


def _now() -> float:
    return round(time.time(), 3)


def code_version() -> str:
    """voltx version plus the git commit when running from a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=2
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class RunWriter:
    """Owns one run directory for the lifetime of a run process."""

    def __init__(self, paths: RunPaths, manifest: dict[str, Any], lock: RunLock):
        self.paths = paths
        self.dir = paths.dir
        self.manifest = manifest
        self._lock = lock
        self._out = BufferedWriter()
        self._feed: SinkFeed | None = None
        self.attempt = len(manifest.get("attempts", []))

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(
        cls, root: Path, phase: str, *, config_toml: str, overrides: list[str], preset: str | None, argv: list[str], run_id: str | None = None
    ) -> "RunWriter":
        run_dir = new_run_dir(root, phase, run_id)
        try:
            run_dir.mkdir(parents=True)
        except FileExistsError:  # the same --run-id started twice at once
            raise UsageError(f"run {run_dir} already exists; a new run needs a new --run-id (or none).") from None
        except OSError as exc:
            raise CantCreateError(
                f"cannot create run directory {run_dir}: {exc.strerror}. Choose a writable runs root "
                "with --runs-dir, VOLTX_RUNS_DIR or [paths].runs_dir."
            ) from None
        paths = RunPaths(run_dir)
        lock = RunLock(paths.lock)
        lock.acquire()
        paths.config.write_text(config_toml, encoding="utf-8")
        paths.overrides.write_text("".join(f"{o}\n" for o in overrides), encoding="utf-8")
        manifest = {
            "format_version": FORMAT_VERSION,
            "id": run_dir.name,
            "phase": phase,
            "preset": preset,
            "overrides": overrides,  # what a requeued `--resume` command is compared with
            "status": "running",
            "created_at": _now(),
            "code_version": code_version(),
            "python": platform.python_version(),
            "argv": argv,
            "attempts": [],
        }
        writer = cls(paths, manifest, lock)
        writer._start_attempt(resumed_from=None)
        return writer

    @classmethod
    def resume(cls, run_dir: Path, argv: list[str]) -> "RunWriter":
        paths = RunPaths(run_dir)
        read = load_manifest(run_dir)
        if read.newer:
            raise CantCreateError(f"{run_dir} was written by a newer voltx (format {read.newer_format}); upgrade voltx to resume it.")
        read.intact(run_dir, "resume it")
        lock = RunLock(paths.lock)
        lock.acquire()
        manifest = read.raw
        manifest.setdefault("attempts", [])
        writer = cls(paths, manifest, lock)
        manifest["argv_resume"] = argv
        return writer

    def _start_attempt(self, resumed_from: int | None) -> None:
        self.manifest["attempts"].append(
            {"pid": os.getpid(), "host": socket.gethostname(), "started_at": _now(), "resumed_from_step": resumed_from}
        )
        self.attempt = len(self.manifest["attempts"])
        self.manifest.update(status="running", pid=os.getpid(), host=socket.gethostname(), ended_at=None, exit_code=None)
        if self.manifest.get("started_at") is None:  # null is "not known": the first start we know of is now
            self.manifest["started_at"] = _now()
        self.write_manifest()

    def mark_resumed(self, from_step: int | None) -> None:
        """Start a new attempt in this directory and record the ``resumed`` event. The message
        now says what this attempt does, not how the previous one ended ("stopped by SIGTERM")."""
        self.manifest["message"] = f"resumed from step {from_step}" if from_step is not None else "resumed from the start"
        self._start_attempt(resumed_from=from_step)
        self.event("resumed", from_step=from_step, attempt=self.attempt)

    def attach_sinks(self, feed: SinkFeed) -> None:
        """From now on every metrics and events line is offered to ``feed`` as well; the writer
        closes it after the run's ``end`` event (:meth:`close`), so sinks see the end too."""
        self._feed = feed

    def write_manifest(self) -> None:
        _atomic_write_text(self.paths.manifest, json.dumps(self.manifest, indent=1))

    def update_manifest(self, **fields: Any) -> None:
        try:  # a field of the wrong type would make every reader show the run as damaged
            Manifest.validate(fields)
        except RecordError as exc:
            raise TypeError(f"update_manifest: {exc} (run.json's fields: voltx.runs.records.Manifest)") from None
        self.manifest.update(fields)
        self.write_manifest()

    def close(self, status: str, exit_code: int, message: str | None = None) -> None:
        """Record the end of this attempt (event, run.json), flush everything, drop the lock."""
        self.event("end", status=status, exit_code=exit_code, message=message)
        if self._feed is not None:
            self._feed.close()  # before the files close: a sink's last alert is still written
            self._feed = None
        self._out.close()
        attempt = self.manifest["attempts"][-1]
        attempt.update(ended_at=_now(), exit_code=exit_code, status=status)
        self.manifest.update(status=status, exit_code=exit_code, ended_at=_now(), message=message)
        try:
            self.write_manifest()
        except OSError as exc:  # a full disk: say so instead of a traceback; the data on disk is intact
            try:
                print(f"voltx: could not record the end of the run in {self.paths.manifest} ({exc.strerror}); "
                      "it shows as stale until it is resumed (--resume) once there is space.", file=sys.stderr, flush=True)
            except OSError:
                pass  # no terminal either
        finally:
            self._lock.release()

    # -- logging (microseconds: the writer thread does the I/O) -----------------------------
    def log_metrics(self, record: dict[str, Any]) -> None:
        """Append one :class:`StepRecord` line; stamps its ``time`` and ``attempt``."""
        record["time"] = _now()
        record["attempt"] = self.attempt
        _readable(StepRecord, record)
        self._out.write(self.paths.metrics, record)
        if self._feed is not None:
            self._feed.offer("metrics", record)

    def event(self, kind: str, **fields: Any) -> None:
        """Append one events.jsonl line, checked as its kind's record type (:data:`EVENT_TYPES`)."""
        record = {"time": _now(), "kind": kind, **fields}
        _readable(EVENT_TYPES.get(kind, Event), record)
        self._out.write(self.paths.events, record)
        if self._feed is not None:
            self._feed.offer("events", record)

    def stdout(self, line: str) -> None:
        self._out.write(self.paths.stdout, line)

    def flush(self) -> None:
        self._out.flush()


def _readable(kind: type[Record], record: dict[str, Any]) -> None:
    """Refuse a record every reader would skip (a step that is not an integer, a verdict without
    ``passed``): the writer's bug surfaces at its call, not as a line missing from every view.

    The check is the readers' own (``kind.validate``, a few dict look-ups). A value it refuses
    in memory but not as JSON (a numpy float is a float once written) is checked again as the
    line will read."""
    try:
        kind.validate(record)
    except RecordError:
        try:
            kind.validate(json.loads(dumps(record)))
        except RecordError as exc:
            raise TypeError(f"not written: {kind.__name__} {exc} (the record types: voltx.runs.records)") from None


# --- reading ------------------------------------------------------------------------------


NEWER_FORMAT = "newer format: upgrade voltx"
"""The problem of a run a newer voltx wrote, as the console shows it (read-only there)."""


@dataclass(frozen=True)
class RunSummary:
    """What `voltx status` and the console's runs screen show for one run (:func:`summarize`).

    Frozen: the console's run index caches one per run by the stat of its files and swaps in a
    new one when they change, so a screen holding a summary never sees it change under it."""

    dir: Path
    id: str
    phase: str
    status: str = "unknown"
    step: int | None = None
    total_steps: int | None = None
    stage: str | None = None
    losses: dict[str, float] = field(default_factory=dict)
    samples_per_sec: float | None = None
    eta_s: float | None = None
    host: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)
    newer: bool = False
    """Written by a newer voltx: shown, never stopped or resumed by this one."""

    @property
    def read_only(self) -> bool:
        return self.newer

    @property
    def problem(self) -> str | None:
        """Why the run is shown degraded, in one line: a missing or damaged run.json (which field,
        what was expected), or a newer format."""
        return NEWER_FORMAT if self.newer else next(iter(self.problems), None)

    @property
    def loss(self) -> float | None:
        """The headline loss: ``loss`` when logged, else the first term."""
        return self.losses["loss"] if "loss" in self.losses else next(iter(self.losses.values()), None)

    def as_dict(self) -> dict[str, Any]:
        """``voltx status --json``'s object for the run."""
        d = {f.name: getattr(self, f.name) for f in declared_fields(self) if f.name != "newer"}
        d["dir"] = str(self.dir)
        return d


DAMAGED = "damaged"


def effective_status(run_dir: Path, manifest: RunManifest) -> str:
    """The manifest's status, except a 'running' run whose writer is gone is 'stale', a run.json
    that is not a manifest is 'damaged' (its problem says why) and a missing one 'unknown'.

    'damaged' says nothing about liveness either way: whether a writer holds the run is the lock's
    to say (resume and a second writer are refused by it, and by the damage itself)."""
    if manifest.damaged:
        return DAMAGED
    status = manifest.record.status or "unknown"
    if status == "running" and not writer_alive(run_dir):
        return "stale"
    return status


def last_metrics(path: Path, tail_bytes: int = 65536) -> StepRecord | None:
    """The last well-formed metrics record, reading only the file's tail."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    # Starting mid-file, the first (partial) line fails to parse and is skipped.
    records = read_jsonl(path, offset=max(0, size - tail_bytes), parse=parse_step).records
    return records[-1] if records else None


def whole_run_steps(logged: int | float | None, planned: int | None) -> int | None:
    """The run's total steps: what its latest step record says (the loop re-plans the later stages
    as each one starts), else run.json's ``total_steps``."""
    return int(logged) if logged is not None else planned


def eta_seconds(status: str, step: int | float | None, total_steps: int | None, steps_per_sec: float | None,
                wall_steps_per_sec: float | None = None) -> float | None:
    """The one ETA rule (the engine's ``[run] ... ETA`` line, ``voltx status``, the console's runs
    screen and its run header): a running run's remaining steps of the whole run at the pace its
    latest step record logged. The pace is ``wall_steps_per_sec`` (wall time since the stage began,
    evaluations and checkpoint writes included: the remaining epochs evaluate and checkpoint too);
    a record without it (written by an older voltx) falls back to the training speed
    ``steps_per_sec``. Never below 0 (a run past its planned total); None for a run that is not
    running or has not logged a step and a pace."""
    pace = wall_steps_per_sec or steps_per_sec
    if status != "running" or step is None or not total_steps or not pace or pace <= 0:
        return None
    return max(0.0, (total_steps - step) / pace)


def summarize(run_dir: Path) -> RunSummary:
    """The run's summary from run.json and the last step record (the tail of metrics.jsonl)."""
    read = load_manifest(run_dir)
    m = read.record
    status = effective_status(run_dir, read)
    step = stage = samples_per_sec = eta_s = None
    losses: dict[str, float] = {}
    total_steps = m.total_steps
    rec = last_metrics(RunPaths(run_dir).metrics)
    if rec:
        step, stage, samples_per_sec = rec.step, rec.stage, rec.samples_per_sec
        losses = {k: v for k, v in rec.losses.items() if v is not None}
        total_steps = whole_run_steps(rec.total_steps, total_steps)
        eta_s = eta_seconds(status, step, total_steps, rec.steps_per_sec, rec.wall_steps_per_sec)
    return RunSummary(
        dir=run_dir, id=m.id or run_dir.name, phase=m.phase or run_dir.parent.name, status=status,
        step=step, total_steps=total_steps, stage=stage, losses=losses, samples_per_sec=samples_per_sec, eta_s=eta_s,
        host=m.host, started_at=m.started_at, ended_at=m.ended_at, exit_code=m.exit_code,
        problems=[read.problem] if read.problem else [], newer=read.newer,
    )


class RunReader:
    """Read-only view of one run directory (incremental: call ``refresh`` to tail).

    Lines go through the run store's record types (:mod:`voltx.runs.records`): a line that is
    not a record of its file's kind is skipped and counted in ``skipped``, never shown."""

    FILES = {"metrics": parse_step, "events": parse_event}

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.paths = RunPaths(run_dir)
        self.manifest: RunManifest = load_manifest(run_dir)
        """run.json, checked: ``manifest.record`` the fields, ``manifest.problem`` why it cannot be used."""
        self._metrics: list[StepRecord] = []
        self._events: list[Event] = []
        self._offsets = {"metrics": 0, "events": 0}
        self._next_line = {"metrics": 1, "events": 1}
        self._tail = {"metrics": False, "events": False}
        self._skipped = {name: SkippedLines(getattr(self.paths, name).name) for name in self.FILES}

    def refresh(self) -> None:
        read = load_manifest(self.dir)
        self.manifest = self.manifest if read.missing else read  # os.replace: missing only if removed
        for name, store in (("metrics", self._metrics), ("events", self._events)):
            got: JsonlRead = read_jsonl(
                getattr(self.paths, name), offset=self._offsets[name], first_line=self._next_line[name], parse=self.FILES[name]
            )
            store.extend(got.records)
            for problem in got.problems:
                self._skipped[name].add(problem)
            self._offsets[name] = got.offset
            self._next_line[name] = got.next_line
            self._tail[name] = got.truncated_tail

    def skipped(self, name: str) -> SkippedLines:
        """Lines of ``metrics`` or ``events`` that were not records. A partial last line counts
        once the writer is gone (it will never be finished); while it runs, it is being written."""
        skipped = self._skipped[name]
        if not self._tail[name] or self.status == "running":
            return skipped
        final = SkippedLines(skipped.file, skipped.count, list(skipped.first), skipped.keep)
        final.add(LineProblem(self._next_line[name], PARTIAL_LINE))
        return final

    @property
    def metrics(self) -> list[StepRecord]:
        """Per-step records, with steps superseded by a resume dropped."""
        return drop_superseded(self._metrics, step_of=_step_of)

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def events_of(self, kind: type[E]) -> list[E]:
        """The events of one record type (``Deliverable``, ``Alert``, ...)."""
        return [e for e in self._events if type(e) is kind]

    @property
    def status(self) -> str:
        return effective_status(self.dir, self.manifest)


def _step_of(record: StepRecord) -> int:
    return record.step
