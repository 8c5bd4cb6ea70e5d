"""metrics.jsonl as numeric columns, read incrementally and downsampled for plots.

A run with a million logged steps must open in seconds in well under 500 MB, so the
reader never keeps records: it parses new complete lines in chunks (one ``orjson.loads``
of a JSON array per chunk, falling back to line by line only for a chunk with a corrupt
line), keeps the lines that are step records (:class:`voltx.runs.records.StepRecord`, the
rule every reader of metrics.jsonl uses), pulls each numeric key out as a column and
appends it to a growable float64 buffer (NaN where a record lacks the key). Only bytes
after the last complete line are read on the next ``refresh``. Plots get a min/max-per-bucket
downsample of at most ``2 * buckets`` points, so spikes stay visible.

:class:`MetricSeries` is the reader a worker thread owns; screens get a :class:`SeriesView`,
an immutable snapshot taken with ``snapshot()``. Taking one copies nothing: a view holds
read-only numpy views of the first ``n`` values of each buffer, and the reader only ever writes
past them (appends land after ``n``; growing or dropping superseded steps makes new buffers and
leaves the old ones to the views that hold them). So a screen drawing a view on the UI thread
while the worker reads on never sees a half-appended column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np
import orjson

from voltx.runs.jsonl import RecordError, decode_line, kept_steps
from voltx.runs.records import StepRecord

CHUNK_BYTES = 8 << 20  # ~30k lines: the dicts of one chunk are all that is ever alive at once
LOSSES = "losses"
SKIP = {"time", "attempt", "stage_step", "batch", "epoch"}
STAGE = "stage"
"""A text field: its column holds each record's stage as an index into ``stage_names``."""


def _column(records: list[dict], get) -> np.ndarray:
    values = [get(r) for r in records]
    try:
        return np.array(values, dtype=np.float64)  # None -> nan
    except (TypeError, ValueError):  # a string or list where a number belongs: keep numbers only
        return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in values], dtype=np.float64)


@dataclass(frozen=True, eq=False)
class SeriesView:
    """One moment of a :class:`MetricSeries`: what a screen draws. Never changes once taken."""

    columns: Mapping[str, np.ndarray]
    """"step", "lr", "loss", "loss_role", ...: read-only float64 arrays, all the same length."""
    loss_terms: tuple[str, ...] = ()
    stage: str | None = None
    stage_names: tuple[str, ...] = ()
    """Every stage the records named, first seen first; the "stage" column indexes it."""
    preview: bool = False
    """True while the columns hold only ``read_preview``'s strided sample."""
    corrupt_lines: tuple[int, ...] = ()
    truncated_tail: bool = False

    def __len__(self) -> int:
        step = self.columns.get("step")
        return len(step) if step is not None else 0

    def array(self, key: str) -> np.ndarray:
        """One column (read-only; empty when the run never logged ``key``)."""
        col = self.columns.get(key)
        return col if col is not None else np.empty(0)

    def latest(self, key: str) -> float | None:
        col = self.array(key)
        if not len(col) or np.isnan(col[-1]):
            return None
        return float(col[-1])

    def downsampled(self, key: str, buckets: int = 1000) -> tuple[list[float], list[float]]:
        """(steps, values) with at most ``2 * buckets`` points: each bucket's min and max in order."""
        return downsample(self.array("step"), self.array(key), buckets)

    def stages(self) -> tuple[tuple[str, float], ...]:
        """(stage, first step) of each run of consecutive records in one stage, in step order: where a
        run's successive stages (translator's encoder then decoder, cognate's base then specialists)
        begin, so a chart draws them apart rather than joining one stage's curve to the next's.
        Records that name no stage belong to the stage before them."""
        index, step = self.array(STAGE), self.array("step")
        named = ~np.isnan(index)
        index, step = index[named], step[named]
        if not len(index):
            return ()
        starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
        return tuple((self.stage_names[int(index[i])], float(step[i])) for i in starts)


EMPTY = SeriesView(MappingProxyType({}))


class MetricSeries:
    """Numeric columns of one run's metrics.jsonl; ``refresh()`` reads only what is new and
    ``snapshot()`` hands out what has been read as a :class:`SeriesView`."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.lines = 0
        self.corrupt_lines: list[int] = []
        self.truncated_tail = False
        self.loss_terms: list[str] = []
        self.stage: str | None = None
        self.stage_names: list[str] = []
        self.preview = False
        """True while the columns hold only ``read_preview``'s strided sample."""
        self._buffers: dict[str, np.ndarray] = {}  # column -> float64 buffer; values [:self._n] are the data
        self._n = 0
        self._capacity = 0
        self._view: SeriesView | None = EMPTY  # None: something changed since the last snapshot

    def __len__(self) -> int:
        return self._n

    def snapshot(self) -> SeriesView:
        """What has been read so far, frozen (the same object until something new is read)."""
        if self._view is None:
            columns = {}
            for key, buf in self._buffers.items():
                col = buf[: self._n]
                col.flags.writeable = False
                columns[key] = col
            self._view = SeriesView(MappingProxyType(columns), tuple(self.loss_terms), self.stage, tuple(self.stage_names),
                                    self.preview, tuple(self.corrupt_lines), self.truncated_tail)
        return self._view

    def refresh(self, max_bytes: int | None = None) -> bool:
        """Read complete lines appended since the last call (in chunks, so a 300 MB file never
        sits in memory whole); True when any were new. ``max_bytes`` bounds one call's work."""
        read = 0
        got = False
        try:
            fh = open(self.path, "rb")
        except OSError:  # missing (no metrics yet), or not readable: nothing new
            return False
        with fh:
            fh.seek(self.offset)
            carry = b""
            while max_bytes is None or read < max_bytes:
                block = fh.read(CHUNK_BYTES)
                if not block:
                    break
                read += len(block)
                data = carry + block
                end = data.rfind(b"\n") + 1
                carry = data[end:]
                if end:
                    self._ingest(data[:end])
                    self.offset += end
                    got = True
            if self.truncated_tail != bool(carry):
                self.truncated_tail = bool(carry)
                self._view = None
        return got

    def read_preview(self, points: int = 4000, window: int = 1024) -> bool:
        """A quick strided sample of a big file (a few lines at ``points`` evenly spaced offsets),
        so a chart shows within a second while ``refresh`` reads everything in the background.
        Returns False (and reads nothing) for a file small enough to read whole at once."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return False
        if size <= CHUNK_BYTES or self.offset:
            return False
        parts = []
        with open(self.path, "rb") as fh:
            for i in range(points):
                fh.seek(size * i // points)
                block = fh.read(window)
                first = block.find(b"\n") + 1 if i else 0
                last = block.rfind(b"\n") + 1
                if first and last > first or (not i and last):
                    parts.append(block[first:last])
        saved = (self.lines, self.corrupt_lines)
        self._ingest(b"".join(parts))
        self.lines, self.corrupt_lines = saved[0], list(saved[1])  # sampled lines carry no file line numbers
        self.preview = True
        self._view = None
        return True

    def _ingest(self, chunk: bytes) -> None:
        """Parse complete lines; each must be a step record (``StepRecord.validate``, the rule every
        reader of metrics.jsonl uses) or it is counted in ``corrupt_lines`` and not plotted."""
        lines = chunk.split(b"\n")[:-1]
        numbered = [(n, ln) for n, ln in enumerate(lines, self.lines + 1) if ln.strip()]
        self.lines += len(lines)
        try:
            objs = orjson.loads(b"[" + b",".join(ln for _, ln in numbered) + b"]")
        except orjson.JSONDecodeError:
            objs = None
        if objs is not None and len(objs) != len(numbered):  # a line held two values
            objs = None
        records = []
        for i, (n, ln) in enumerate(numbered):
            try:
                # Line by line only for a chunk orjson refused: a corrupt line, or NaN (json reads it as null).
                rec = StepRecord.validate(objs[i]) if objs is not None else decode_line(ln, StepRecord.validate)
            except RecordError:
                self.corrupt_lines.append(n)
                self._view = None
                continue
            records.append(rec)
        if records:
            self._append(records)

    def _append(self, records: list[dict]) -> None:
        keys: dict[str, None] = {}
        terms: dict[str, None] = {}
        for rec in (records[0], records[len(records) // 2], records[-1]):  # key sets rarely change within a run
            keys.update(dict.fromkeys(rec))
            if isinstance(rec.get(LOSSES), dict):
                terms.update(dict.fromkeys(rec[LOSSES]))
        stage = records[-1].get("stage")
        self.stage = stage if isinstance(stage, str) else self.stage
        cols: dict[str, np.ndarray] = {}
        if STAGE in keys:
            cols[STAGE] = np.array([self._stage_index(r.get(STAGE)) for r in records], dtype=np.float64)
        for k in keys:
            if k in SKIP or k in (LOSSES, STAGE):
                continue
            col = _column(records, lambda r, k=k: r.get(k))
            if k == "step" or not np.all(np.isnan(col)):
                cols[k] = col
        for t in terms:
            def get(r, t=t):
                losses = r.get(LOSSES)
                return losses.get(t) if isinstance(losses, dict) else None
            cols[t] = _column(records, get)
            if t not in self.loss_terms:
                self.loss_terms.append(t)
        n_old, n = self._n, self._n + len(records)
        self._reserve(n)
        for k, col in cols.items():
            buf = self._buffers.get(k)
            if buf is None:  # a key first logged now: NaN for the steps before it
                buf = self._buffers[k] = np.empty(self._capacity)
                buf[:n_old] = np.nan
            buf[n_old:n] = col
        for k, buf in self._buffers.items():
            if k not in cols:
                buf[n_old:n] = np.nan
        self._n = n
        self._view = None
        self._drop_superseded(n_old)

    def _stage_index(self, name) -> float:
        """The record's stage as an index into ``stage_names`` (NaN where it names none)."""
        if not isinstance(name, str):
            return np.nan
        if name not in self.stage_names:
            self.stage_names.append(name)
        return float(self.stage_names.index(name))

    def _reserve(self, n: int) -> None:
        """Room for ``n`` values per column. Growing copies into new buffers (1.5x, amortised O(1)
        per value): a view taken before keeps the old buffer, unchanged."""
        if n <= self._capacity:
            return
        self._capacity = max(n, self._capacity * 3 // 2, 1024)
        for k, old in self._buffers.items():
            buf = self._buffers[k] = np.empty(self._capacity)
            buf[: self._n] = old[: self._n]

    def _drop_superseded(self, n_old: int) -> None:
        """After a resume the loop logs steps again: the run store's rule (``kept_steps``) keeps
        the latest attempt of every step. Only the steps appended since ``n_old`` (and the one
        before them) need looking at: until a step goes down, there is nothing to drop."""
        step = self._buffers["step"][: self._n]
        if len(step) < 2 or np.all(np.diff(step[max(0, n_old - 1):]) > 0):
            return
        keep = np.frombuffer(kept_steps(step.tolist()), dtype=np.bool_)
        for k, buf in self._buffers.items():
            self._buffers[k] = buf[: self._n][keep]  # a new buffer: views taken before keep theirs
        self._n = self._capacity = int(keep.sum())


def downsample(x: np.ndarray, y: np.ndarray, buckets: int = 1000) -> tuple[list[float], list[float]]:
    """Bucketed min/max: keeps every spike a line plot would show, in ``<= 2*buckets`` points."""
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    ok = ~np.isnan(y) & ~np.isnan(x)
    if not ok.all():
        x, y = x[ok], y[ok]
        n = len(y)
    if n <= 2 * buckets:
        return x.tolist(), y.tolist()
    size = -(-n // buckets)  # ceil
    buckets = -(-n // size)  # so that only the last bucket is padded, and never wholly
    pad = size * buckets - n
    yb = np.concatenate([y, np.full(pad, np.nan)]).reshape(buckets, size)
    xb = np.concatenate([x, np.full(pad, x[-1])]).reshape(buckets, size)
    lo_i = np.nanargmin(yb, axis=1)
    hi_i = np.nanargmax(yb, axis=1)
    rows = np.arange(buckets)
    first = np.minimum(lo_i, hi_i)
    second = np.maximum(lo_i, hi_i)
    xs = np.empty(2 * buckets)
    ys = np.empty(2 * buckets)
    xs[0::2], ys[0::2] = xb[rows, first], yb[rows, first]
    xs[1::2], ys[1::2] = xb[rows, second], yb[rows, second]
    return xs.tolist(), ys.tolist()
