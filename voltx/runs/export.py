"""Export a run's metrics: CSV (one row per step), JSONL, or TensorBoard event files.

Steps superseded by a resume are dropped with the same rule as
:func:`voltx.runs.jsonl.drop_superseded`, but streamed: a first pass over metrics.jsonl
keeps only each record's step, so a run with millions of logged steps is exported without
holding its records in memory. Outputs are written to a temporary name and renamed, so
a reader never sees half a file. No torch unless TensorBoard is asked for.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import shutil
from array import array
from pathlib import Path
from typing import Any, Iterator

from voltx.errors import MissingInputError, UsageError
from voltx.runs.jsonl import dumps
from voltx.runs.layout import RunPaths, is_run_dir, read_manifest

FORMATS = ("csv", "jsonl", "tensorboard")
_FIRST = ("step", "time", "attempt", "stage")  # CSV columns first, in this order, when present


def _records(path: Path) -> Iterator[dict]:
    """Every JSON object line of the file; corrupt and half-written lines are skipped."""
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return  # a line still being written
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict):
                yield rec


def _step(rec: dict) -> float | None:
    step = rec.get("step")
    return float(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None


def kept_records(path: Path) -> Iterator[dict]:
    """The records drop_superseded would keep, streamed in two passes.

    Record i is superseded when some later record's step is at or below the step of the
    last stepped record up to i (a resume re-logged from an earlier checkpoint).
    """
    upto = array("d")  # step of the last stepped record at or before each record
    own = array("d")  # each record's own step (inf when it has none)
    last = -math.inf
    for rec in _records(path):
        step = _step(rec)
        last = step if step is not None else last
        upto.append(last)
        own.append(step if step is not None else math.inf)
    after = math.inf  # min step of the records after i, walking backwards
    keep = bytearray(len(upto))
    for i in range(len(upto) - 1, -1, -1):
        keep[i] = upto[i] < after
        after = min(after, own[i])
    # A live run may append between the passes: the second pass reads only what the first saw.
    for i, rec in zip(range(len(keep)), _records(path)):
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
    manifest = read_manifest(run_dir)
    stem = f"{manifest.get('phase') or run_dir.parent.name}-{manifest.get('id') or run_dir.name}"
    return Path.cwd() / (f"{stem}-tensorboard" if to == "tensorboard" else f"{stem}.{to}")


def export_run(run_dir: Path, to: str, output: Path | None = None) -> Path:
    """Write the run's metrics as ``to`` (csv, jsonl, tensorboard); returns what was written.

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
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
        if to == "csv":
            _write_csv(metrics, tmp)
        elif to == "jsonl":
            _write_jsonl(metrics, tmp)
        else:
            _write_tensorboard(metrics, tmp)
        if output.is_dir() and not output.is_symlink():
            shutil.rmtree(output)  # a previous TensorBoard export of the same run
        os.replace(tmp, output)
    except OSError as exc:
        from voltx.errors import CantCreateError

        raise CantCreateError(f"cannot write {output}: {exc.strerror or exc}. Choose another path with --output.") from None
    return output


def _write_csv(metrics: Path, tmp: Path) -> None:
    columns: dict[str, None] = {}  # ordered union of the numeric columns of the kept rows
    for rec in kept_records(metrics):
        for key, value in flatten(rec).items():
            if _numeric(value) or (key == "stage" and isinstance(value, str)):
                columns.setdefault(key, None)
    header = [c for c in _FIRST if c in columns] + sorted(c for c in columns if c not in _FIRST)
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for rec in kept_records(metrics):
            flat = flatten(rec)
            row = [flat.get(c) for c in header]
            writer.writerow(["" if v is None or not (_numeric(v) or c == "stage") else v for c, v in zip(header, row)])


def _write_jsonl(metrics: Path, tmp: Path) -> None:
    with open(tmp, "w", encoding="utf-8") as fh:
        for rec in kept_records(metrics):
            fh.write(dumps(rec) + "\n")


def _write_tensorboard(metrics: Path, tmp: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter  # only here: torch is heavy

    writer = SummaryWriter(log_dir=str(tmp))
    try:
        for rec in kept_records(metrics):
            step = _step(rec)
            if step is None:
                continue
            walltime = rec.get("time") if _numeric(rec.get("time")) else None
            for tag, value in flatten(rec).items():
                if tag not in ("step", "time", "attempt") and _numeric(value) and math.isfinite(value):
                    writer.add_scalar(tag, value, global_step=int(step), walltime=walltime)
    finally:
        writer.close()
