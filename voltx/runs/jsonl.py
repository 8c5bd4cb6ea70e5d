"""Append-only JSONL: a buffered writer thread for the run's logs, and tolerant readers.

A log call from the training loop only enqueues the record (a few microseconds); the
writer thread serialises, writes and flushes in batches. Readers leave a truncated last
line for the next read (a run being written) and skip lines that are not records instead
of failing, keeping each one's line number and the reason (:class:`SkippedLines`); what a
record of each kind must hold is declared in :mod:`voltx.runs.records`.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

_FLUSH = object()
_CLOSE = object()


def null_non_finite(obj: Any) -> Any:
    """NaN/inf are not JSON; write them as null so every reader can parse the line (and read
    another writer's NaN as null, the same "no value")."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: null_non_finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [null_non_finite(v) for v in obj]
    return obj


def dumps(record: dict) -> str:
    try:
        return json.dumps(record, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:
        return json.dumps(null_non_finite(record), separators=(",", ":"), default=str)


class BufferedWriter:
    """One background thread appending records to several files.

    ``write(path, record)`` enqueues; the thread writes whatever has queued up and flushes
    at most every ``flush_interval`` seconds. ``flush()`` blocks until everything queued
    so far is on disk (the loop calls it before a checkpoint commits).
    """

    def __init__(self, flush_interval: float = 0.25):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._files: dict[Path, Any] = {}
        self._interval = flush_interval
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="voltx-log-writer", daemon=True)
        self._thread.start()

    def write(self, path: Path, record: dict | str) -> None:
        self._queue.put((path, record))

    def flush(self) -> None:
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        done.wait(timeout=30)
        if self._error:
            raise self._error

    def close(self) -> None:
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put((_CLOSE, done))
            done.wait(timeout=30)
            self._thread.join(timeout=5)

    def _open(self, path: Path):
        fh = self._files.get(path)
        if fh is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+b")
            # A killed writer may have left a partial last line: start ours on a new line.
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            self._files[path] = fh
        return fh

    def _run(self) -> None:
        last_flush = time.monotonic()
        dirty: set[Path] = set()
        while True:
            try:
                item = self._queue.get(timeout=self._interval)
            except queue.Empty:
                item = None
            batch = [] if item is None else [item]
            while True:  # drain what has queued up, so one flush covers many records
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            waiters, closing = [], False
            for path, record in batch:
                if path is _FLUSH:
                    waiters.append(record)
                    continue
                if path is _CLOSE:
                    waiters.append(record)
                    closing = True
                    continue
                try:
                    line = record if isinstance(record, str) else dumps(record)
                    self._open(path).write(line.encode("utf-8") + (b"" if line.endswith("\n") else b"\n"))
                    dirty.add(path)
                except OSError as exc:  # disk full: keep training, surface on next flush()
                    self._error = exc
            if dirty and (waiters or time.monotonic() - last_flush >= self._interval):
                for p in dirty:
                    self._files[p].flush()
                dirty.clear()
                last_flush = time.monotonic()
            if closing:
                for fh in self._files.values():
                    fh.flush()
                    os.fsync(fh.fileno())
                    fh.close()
                self._files.clear()
            for w in waiters:
                w.set()
            if closing:
                return


# --- reading ---------------------------------------------------------------------------------


class RecordError(ValueError):
    """A line that is not a record of the expected kind; ``str()`` is the reason, e.g.
    ``field 'step' expected an integer, got 'abc'``."""


Parse = Callable[[Any], Any]
"""Turns a decoded JSON value into a record or raises RecordError (``voltx.runs.records``)."""

PARTIAL_LINE = "incomplete: the file ends mid-line (the writer stopped while writing it)"


def describe(value: Any) -> str:
    """A JSON value as a reason shows it: ``'abc'``, ``null``, ``true``, ``NaN``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _object(obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {describe(obj)}")
    return obj


def decode_line(raw: bytes, parse: Parse | None = None) -> Any:
    """One line as a record (a dict without ``parse``); RecordError says why it is not one."""
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError:
        raise RecordError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        # json's messages read "Invalid control character at" + position: the position is ours
        raise RecordError(f"not valid JSON ({exc.msg.removesuffix(' at')} at column {exc.colno})") from None
    return parse(obj) if parse is not None else _object(obj)


@dataclass(frozen=True)
class LineProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class SkippedLines:
    """The lines of one file that were not records: how many, and the first few with why."""

    file: str
    count: int = 0
    first: list[LineProblem] = field(default_factory=list)
    keep: int = 20
    """How many problems are kept with their reason (a damaged million-line file stays small)."""

    def add(self, problem: LineProblem) -> None:
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(problem)

    def summary(self) -> str | None:
        """``skipped 2 malformed lines in metrics.jsonl (first: line 7: ...)``, or None."""
        if not self.count:
            return None
        lines = "line" if self.count == 1 else "lines"
        return f"skipped {self.count} malformed {lines} in {self.file} (first: {self.first[0]})"

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "lines": [{"line": p.line, "reason": p.reason} for p in self.first]}


@dataclass
class JsonlRead:
    records: list = field(default_factory=list)
    problems: list[LineProblem] = field(default_factory=list)
    """Complete lines that are not records, with their file line numbers and why."""
    truncated_tail: bool = False
    offset: int = 0
    """Byte offset after the last complete line: pass it back to read only what is new."""
    next_line: int = 1
    """Number of the line at ``offset``: pass it back as ``first_line`` so problems keep their file numbers."""

    @property
    def corrupt_lines(self) -> list[int]:
        return [p.line for p in self.problems]


def read_jsonl(
    path: Path, offset: int = 0, limit_bytes: int | None = None, first_line: int = 1, parse: Parse | None = None
) -> JsonlRead:
    """Read complete lines from ``offset`` (line number ``first_line``) as records (``parse``
    of each decoded line; plain dicts without it); a partial last line is left for the next read."""
    out = JsonlRead(offset=offset, next_line=first_line)
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read() if limit_bytes is None else fh.read(limit_bytes)
    except FileNotFoundError:
        return out
    end = data.rfind(b"\n")
    if end < len(data) - 1:
        out.truncated_tail = True
    complete = data[: end + 1] if end >= 0 else b""
    line_no = first_line - 1
    for raw in complete.split(b"\n")[:-1]:
        line_no += 1
        if not raw.strip():
            continue
        try:
            out.records.append(decode_line(raw, parse))
        except RecordError as exc:
            out.problems.append(LineProblem(line_no, str(exc)))
    out.offset = offset + len(complete)
    out.next_line = line_no + 1
    return out


def stream_jsonl(
    path: Path, parse: Parse | None = None, skipped: SkippedLines | None = None, final: bool = False, end: int | None = None
) -> Iterator:
    """The file's records one at a time (for files too big to hold), lines that are not records
    added to ``skipped``. A partial last line is a line still being written, unless ``final``
    (its writer is gone and will never finish it): then it is skipped like a malformed one.

    ``end``: read only the file's first ``end`` bytes, as if it ended there. Several passes over a
    live run's file given the same ``end`` see the same lines, whatever the writer appends meanwhile."""
    remaining = math.inf if end is None else end
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            if len(raw) > remaining:
                raw = raw[: int(remaining)]  # the snapshot ends inside this line
            remaining -= len(raw)
            if not raw.endswith(b"\n"):
                if final and raw.strip() and skipped is not None:
                    skipped.add(LineProblem(line_no, PARTIAL_LINE))
                return
            if not raw.strip():
                continue
            try:
                record = decode_line(raw, parse)
            except RecordError as exc:
                if skipped is not None:
                    skipped.add(LineProblem(line_no, str(exc)))
                continue
            yield record


def kept_steps(steps: Sequence[float]) -> bytearray:
    """The one rule for steps a resume superseded: which records of a metrics file to keep.

    After a resume the loop logs steps again from the checkpoint's, so the latest attempt wins:
    record i is dropped when a later record's step is at or below its step. A record without a
    step (NaN here) goes with the stepped record before it (kept when there is none). Every reader
    applies this: :class:`RunReader` (through :func:`drop_superseded`), ``voltx export`` (streamed)
    and the console's metric columns."""
    keep = bytearray(len(steps))
    after = math.inf  # the smallest step logged after i, walking backwards
    for i in range(len(steps) - 1, -1, -1):
        step = steps[i]
        if step == step:  # not NaN
            keep[i] = step < after
            after = min(after, step)
    kept = 1
    for i, step in enumerate(steps):  # step-less records follow the stepped record before them
        if step == step:
            kept = keep[i]
        else:
            keep[i] = kept
    return keep


def _step_key(record: dict) -> Any:
    return record.get("step")


def drop_superseded(records: list, step_of: Callable[[Any], Any] = _step_key) -> list:
    """The records :func:`kept_steps` keeps. ``step_of`` reads a record's step (dicts by default;
    ``lambda r: r.step`` for StepRecords); one that is not a number counts as no step."""
    steps = [s if isinstance(s, (int, float)) else math.nan for s in map(step_of, records)]
    return [rec for rec, keep in zip(records, kept_steps(steps)) if keep]
