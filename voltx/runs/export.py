"""Export a run's metrics: CSV (one row per step), JSONL, or TensorBoard event files; and its
deliverable verdicts (:func:`export_deliverables`): CSV or JSONL, one row per verdict.

Steps superseded by a resume are dropped by the run store's one rule
(:func:`voltx.runs.jsonl.kept_steps`), streamed: a first pass over metrics.jsonl
keeps only each record's step, so a run with millions of logged steps is exported without
holding its records in memory. Every pass reads the file's first N bytes, N its size when the
export began: a live run appending meanwhile cannot make the passes disagree. Outputs are written to a temporary name and renamed, so
a reader never sees half a file. No torch unless TensorBoard is asked for.

Lines go through the run store's step record type (:class:`voltx.runs.records.StepRecord`):
a line that is not one (``"step": "abc"``, no step, not JSON, cut off by a crash) is not
exported, and :class:`Exported` says how many were skipped and why the first was.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import shutil
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from voltx.errors import MissingInputError, UsageError
from voltx.runs.jsonl import SkippedLines, dumps, kept_steps, stream_jsonl
from voltx.runs.layout import RunPaths, is_run_dir, load_manifest
from voltx.runs.lock import writer_alive
from voltx.runs.records import StepRecord, parse_step

FORMATS = ("csv", "jsonl", "tensorboard")
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


def flatten(rec: dict, prefix: str = "") -> dict[str, Any]:
    """{"losses": {"loss": 1.0}} -> {"losses/loss": 1.0} (TensorBoard's tag style)."""
    out: dict[str, Any] = {}
    for key, value in rec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _default_output(run_dir: Path, to: str) -> Path:
    manifest = load_manifest(run_dir).record
    stem = f"{manifest.phase or run_dir.parent.name}-{manifest.id or run_dir.name}"
    return Path.cwd() / (f"{stem}-tensorboard" if to == "tensorboard" else f"{stem}.{to}")


@dataclass
class Exported:
    """What ``export_run`` wrote, and the lines of metrics.jsonl it could not export."""

    path: Path
    skipped: SkippedLines


def export_run(run_dir: Path, to: str, output: Path | None = None) -> Exported:
    """Write the run's metrics as ``to`` (csv, jsonl, tensorboard); says what was written.

    Default output: ``<phase>-<run id>.csv|.jsonl`` or ``<phase>-<run id>-tensorboard/`` in
    the current directory (the run directory belongs to its writer)."""
    run_dir = Path(run_dir)
    if to not in FORMATS:
        raise UsageError(f"unknown export format {to!r}; choose one of {', '.join(FORMATS)}.")
    if not is_run_dir(run_dir):
        raise MissingInputError(f"{run_dir} is not a run directory (it has no run.json).")
    metrics = RunPaths(run_dir).metrics
    if not metrics.is_file():
        raise MissingInputError(f"{metrics} does not exist: the run has logged no steps yet.")
    if to == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise UsageError("exporting to TensorBoard needs the tensorboard package: pip install tensorboard (or export --to csv).")
    output = Path(output) if output is not None else _default_output(run_dir, to)
    skipped = SkippedLines(metrics.name)
    final = not writer_alive(run_dir)  # a partial last line of a dead writer is never finished
    # One snapshot: every pass reads the bytes there were now, so a live run's later lines are
    # never half in the export (a row whose columns the CSV header, read earlier, lacks).
    end = metrics.stat().st_size

    def write(tmp: Path) -> None:
        records = kept_records(metrics, skipped, final, end)
        if to == "csv":
            _write_csv(records, lambda: kept_records(metrics, end=end), tmp)
        elif to == "jsonl":
            _write_jsonl(records, tmp)
        else:
            _write_tensorboard(records, tmp)

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


def _write_tensorboard(records: Iterator[StepRecord], tmp: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter  # only here: torch is heavy

    writer = SummaryWriter(log_dir=str(tmp))
    try:
        for rec in records:
            for tag, value in flatten(rec.to_dict()).items():
                if tag not in ("step", "time", "attempt") and _numeric(value) and math.isfinite(value):
                    writer.add_scalar(tag, value, global_step=rec.step, walltime=rec.time)
    finally:
        writer.close()
