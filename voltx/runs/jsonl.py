"""Append-only JSONL: a buffered writer thread for the run's logs, and tolerant readers.

A log call from the training loop only enqueues the record (a few microseconds); the
writer thread serialises, writes and flushes in batches. Readers skip a truncated last
line (a run being written or killed mid-write) and report corrupt lines instead of failing.
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
from typing import Any, Iterator

_FLUSH = object()
_CLOSE = object()


def _clean(obj: Any) -> Any:
    """NaN/inf are not JSON; write them as null so every reader can parse the line."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(record: dict) -> str:
    try:
        return json.dumps(record, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:
        return json.dumps(_clean(record), separators=(",", ":"), default=str)


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


@dataclass
class JsonlRead:
    records: list[dict] = field(default_factory=list)
    corrupt_lines: list[int] = field(default_factory=list)
    truncated_tail: bool = False
    offset: int = 0
    """Byte offset after the last complete line: pass it back to read only what is new."""
    next_line: int = 1
    """Number of the line at ``offset``: pass it back as ``first_line`` so corrupt lines keep their file numbers."""


def read_jsonl(path: Path, offset: int = 0, limit_bytes: int | None = None, first_line: int = 1) -> JsonlRead:
    """Read complete lines from ``offset`` (line number ``first_line``); a partial last line is
    left for the next read."""
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
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            out.corrupt_lines.append(line_no)
            continue
        if isinstance(rec, dict):
            out.records.append(rec)
        else:
            out.corrupt_lines.append(line_no)
    out.offset = offset + len(complete)
    out.next_line = line_no + 1
    return out


def iter_jsonl(path: Path) -> Iterator[dict]:
    yield from read_jsonl(path).records


def drop_superseded(records: list[dict], key: str = "step") -> list[dict]:
    """After a resume, steps are logged again from the checkpoint: keep the latest attempt.

    When a record's step is not greater than the previous one, everything logged at or
    after that step by the earlier attempt is dropped (records without a step included).
    """
    out: list[dict] = []
    last_stepped: list[int] = []  # indexes in ``out`` of the records that have a step
    for rec in records:
        step = rec.get(key)
        if isinstance(step, (int, float)):
            while last_stepped and out[last_stepped[-1]][key] >= step:
                del out[last_stepped.pop() :]
            last_stepped.append(len(out))
        out.append(rec)
    return out
