"""Export a run: its metrics as CSV (one row per step) or JSONL, or the whole run replayed into a
tracker sink (TensorBoard event files, an offline W&B run, an MLflow run); and its deliverable
verdicts (:func:`export_deliverables`): CSV or JSONL, one row per verdict.

Steps superseded by a resume are dropped by the run store's one rule
(:func:`voltx.runs.jsonl.kept_steps`), streamed: a first pass over metrics.jsonl
keeps only each record's step, so a run with millions of logged steps is exported without
holding its records in memory. Every pass reads the file's first N bytes, N its size when the
export began: a live run appending meanwhile cannot make the passes disagree. Outputs are written to a temporary name and renamed, so
a reader never sees half a file (a TensorBoard directory too). No torch, ever; a tracker's package
only when that tracker is asked for.

A tracker export replays the run as the live sink would have received it
(:mod:`voltx.runs.sink_feed`): the kept step records and every event, as their record types, in the
order they were written, into the same sink class; so a run started without a sink can still be
sent (``voltx export RUN --to wandb``, then ``wandb sync``).

Lines go through the run store's step record type (:class:`voltx.runs.records.StepRecord`):
a line that is not one (``"step": "abc"``, no step, not JSON, cut off by a crash) is not
exported, and :class:`Exported` says how many were skipped and why the first was.
"""

from __future__ import annotations

import csv
import heapq
import os
import shutil
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from voltx.errors import MissingInputError, PreflightError, UsageError
from voltx.formatting import flatten
from voltx.runs.jsonl import SkippedLines, dumps, kept_steps, stream_jsonl
from voltx.runs.layout import RunPaths, is_run_dir, load_manifest
from voltx.runs.lock import writer_alive
from voltx.runs.records import Record, StepRecord, parse_event, parse_step

TRACKERS = ("tensorboard", "wandb", "mlflow")
"""Formats that are a built-in sink of the same name, replayed (:func:`replay`)."""
FORMATS = ("csv", "jsonl", *TRACKERS)
_FIRST = ("step", "time", "attempt", "stage")  # CSV columns first, in this order, when present


def kept_records(path: Path, skipped: SkippedLines | None = None, final: bool = False, end: int | None = None) -> Iterator[StepRecord]:
    """The records :func:`~voltx.runs.jsonl.kept_steps` keeps, streamed in two passes over the file's
    first ``end`` bytes (default: its size now), so both passes see the same lines while a live run
    appends. Malformed lines are added to ``skipped`` (a partial last line too when ``final``: its
    writer is gone)."""
    if end is None:
        end = path.stat().st_size
    steps = array("d", (rec.step for rec in stream_jsonl(path, parse_step, skipped, final, end)))
    keep = kept_steps(steps)
    for i, rec in zip(range(len(keep)), stream_jsonl(path, parse_step, end=end)):  # the same ``end``: the same records
        if keep[i]:
            yield rec


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _default_output(run_dir: Path, to: str) -> Path:
    manifest = load_manifest(run_dir).record
    stem = f"{manifest.phase or run_dir.parent.name}-{manifest.id or run_dir.name}"
    return Path.cwd() / (f"{stem}-{to}" if to in TRACKERS else f"{stem}.{to}")


@dataclass
class Exported:
    """What ``export_run`` wrote, and the lines of metrics.jsonl it could not export."""

    path: Path | str
    """The file or directory written; for MLflow the store's tracking URI."""
    skipped: SkippedLines


def export_run(run_dir: Path, to: str, output: Path | None = None) -> Exported:
    """Write the run as ``to`` (csv, jsonl, tensorboard, wandb, mlflow); says what was written.

    Default output: ``<phase>-<run id>.csv|.jsonl``, ``<phase>-<run id>-tensorboard/`` or
    ``-wandb/`` in the current directory (the run directory belongs to its writer); MLflow: the
    store the live sink writes (``<runs root>/mlflow.db`` or $MLFLOW_TRACKING_URI)."""
    run_dir = Path(run_dir)
    if to not in FORMATS:
        raise UsageError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}.")
    if not is_run_dir(run_dir):
        raise MissingInputError(f"{run_dir} is not a run directory (it has no run.json).")
    metrics = RunPaths(run_dir).metrics
    if not metrics.is_file():
        raise MissingInputError(f"{metrics} does not exist: the run has logged no steps yet.")
    sink = _tracker_sink(to) if to in TRACKERS else None
    skipped = SkippedLines(metrics.name)
    final = not writer_alive(run_dir)  # a partial last line of a dead writer is never finished
    # One snapshot: every pass reads the bytes there were now, so a live run's later lines are
    # never half in the export (a row whose columns the CSV header, read earlier, lacks).
    end = metrics.stat().st_size
    records = kept_records(metrics, skipped, final, end)
    if to == "mlflow":  # a run added to a store, not a file of ours
        target = sink(run_dir, output=output, replay=True)
        replay(run_dir, records, target)
        return Exported(target.location, skipped)
    output = Path(output) if output is not None else _default_output(run_dir, to)
    if to == "wandb":  # an offline-run-* directory inside ``output``, which W&B names itself
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            replay(run_dir, records, sink(run_dir, output=output, replay=True))
        except OSError as exc:
            _cant_create(output, exc)
        return Exported(output, skipped)

    def write(tmp: Path) -> None:
        if to == "csv":
            _write_csv(records, lambda: kept_records(metrics, end=end), tmp)
        elif to == "jsonl":
            _write_jsonl(records, tmp)
        else:
            replay(run_dir, records, sink(run_dir, output=tmp, replay=True))

    _write_atomically(output, write)
    return Exported(output, skipped)


def export_deliverables(run_dir: Path, to: str, output: Path | None = None) -> Exported:
    """Write the run's deliverable verdicts as ``to`` (csv or jsonl): one row per verdict with its
    value, target, strongest no-model baseline (and every baseline), margin, ablations, whether
    it passed and why not. Fields a run from before baselines did not record are empty (null).

    Default output: ``<phase>-<run id>-deliverables.csv|.jsonl`` in the current directory."""
    from voltx.runs.records import Deliverable
    from voltx.runs.store import RunReader

    run_dir = Path(run_dir)
    if to not in ("csv", "jsonl"):
        raise UsageError(f"deliverables export to csv or jsonl, not {to!r}.")
    if not is_run_dir(run_dir):
        raise MissingInputError(f"{run_dir} is not a run directory (it has no run.json).")
    reader = RunReader(run_dir)
    reader.refresh()
    verdicts = [d.verdict() for d in reader.events_of(Deliverable)]
    if not verdicts:
        raise MissingInputError(f"{run_dir} has no deliverable verdicts yet: a phase judges them when it finishes.")
    if output is None:
        default = _default_output(run_dir, to)
        output = default.with_name(f"{default.stem}-deliverables{default.suffix}")
    output = Path(output)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            if to == "jsonl":
                fh.writelines(dumps(v) + "\n" for v in verdicts)
                return
            rows = [flatten(v) for v in verdicts]  # baselines/<metric>, ablations/<metric> columns
            first = [f for f in Deliverable.VERDICT_FIELDS if f not in ("baselines", "ablations")]
            header = first + [c for c in dict.fromkeys(k for row in rows for k in row) if c not in first]
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(["" if row.get(c) is None else row[c] for c in header] for row in rows)

    _write_atomically(output, write)
    return Exported(output, reader.skipped("events"))


def _write_atomically(output: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary name beside ``output``, then rename it: a reader never sees half a file."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        write(tmp)
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)  # a previous TensorBoard export of the same run
        os.replace(tmp, output)
    except OSError as exc:
        _cant_create(output, exc)


def _cant_create(output: Path, exc: OSError) -> None:
    from voltx.errors import CantCreateError

    raise CantCreateError(f"cannot write {output}: {exc.strerror or exc}. Choose another path with --output.") from None


def _write_csv(records: Iterator[StepRecord], again: Callable[[], Iterator[StepRecord]], tmp: Path) -> None:
    """``records`` finds the columns; ``again()`` streams the same records for the rows."""
    columns: dict[str, None] = {}  # ordered union of the numeric columns of the kept rows
    for rec in records:
        for key, value in flatten(rec.to_dict()).items():
            if _numeric(value) or (key == "stage" and isinstance(value, str)):
                columns.setdefault(key, None)
    header = [c for c in _FIRST if c in columns] + sorted(c for c in columns if c not in _FIRST)
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for rec in again():  # the same rows again: the first pass only found the columns
            flat = flatten(rec.to_dict())
            row = [flat.get(c) for c in header]
            writer.writerow(["" if v is None or not (_numeric(v) or c == "stage") else v for c, v in zip(header, row)])


def _write_jsonl(records: Iterator[StepRecord], tmp: Path) -> None:
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps(rec.to_dict()) + "\n")


def _tracker_sink(to: str):
    """The class of the sink ``to`` (from the plugin registry, as a run finds it), or the error a
    run naming it would get. Its factory takes ``output=`` and ``replay=True`` (leave the run
    directory as it is)."""
    from voltx.plugin_specs import resolve
    from voltx.plugins import load_plugins
    from voltx.runs.sink_feed import missing_modules

    spec = load_plugins().get("sinks", to)
    missing = missing_modules(spec)
    if missing:
        raise PreflightError(f"exporting to {to} needs {', '.join(missing)}, which is not installed: "
                             f'pip install "voltx[{spec.extra}]" (or export --to csv).')
    return resolve(spec.factory)


def replay(run_dir: Path, steps: Iterator[StepRecord], sink) -> None:
    """Write ``steps`` and the run's events into ``sink`` in the order they were written (by time),
    as the live feed does, then close it."""
    events = stream_jsonl(RunPaths(run_dir).events, parse_event) if RunPaths(run_dir).events.is_file() else iter(())
    try:
        for record in heapq.merge(steps, events, key=_written_at):
            sink.write(record)
    finally:
        sink.close()


def _written_at(record: Record) -> float:
    return getattr(record, "time", None) or 0.0
