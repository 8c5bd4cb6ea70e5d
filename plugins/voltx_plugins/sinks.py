"""Built-in sinks: ``csv`` (metrics.csv beside metrics.jsonl) and the live trackers.

Enable with ``[run].sinks = ["csv"]`` (or ``--sink csv``). The trackers are optional extras,
imported only by a run that uses them (their modules are named by string):

- ``wandb``: an offline W&B run (``pip install "voltx[wandb]"``), :mod:`voltx_plugins.wandb_sink`;
- ``tensorboard``: TensorBoard event files through tensorboardX (``voltx[tensorboard]``),
  :mod:`voltx_plugins.tensorboard_sink`;
- ``mlflow``: an MLflow run in a local SQLite store (``voltx[mlflow]``), :mod:`voltx_plugins.mlflow_sink`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from voltx import hookimpl
from voltx.plugin_specs import SinkSpec
from voltx.runs.records import StepRecord


def flatten(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}/"))
        else:
            out[name] = value
    return out


class CsvSink:
    """One row per logged step; other records (evaluations, events) are not rows."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.csv"
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer: csv.DictWriter | None = None

    def write(self, record) -> None:
        if not isinstance(record, StepRecord):
            return
        row = flatten(record.to_dict())
        if self._writer is None:
            # Columns are fixed by the first record; later keys (a new stage's terms) go in 'extra'.
            self._writer = csv.DictWriter(self._fh, fieldnames=[*row, "extra"], extrasaction="ignore")
            if self._fh.tell() == 0:
                self._writer.writeheader()
        known = set(self._writer.fieldnames)
        extra = {k: v for k, v in row.items() if k not in known}
        if extra:
            row["extra"] = ";".join(f"{k}={v}" for k, v in extra.items())
        self._writer.writerow(row)

    def close(self) -> None:
        self._fh.close()


TRACKERS = (
    SinkSpec("wandb", "an offline W&B run in <run>/wandb (wandb sync uploads it); resumes continue it",
             "voltx_plugins.wandb_sink:WandbSink", requires=("wandb",), extra="wandb"),
    SinkSpec("tensorboard", "TensorBoard event files in <run>/tensorboard (tensorboardX, no TensorFlow)",
             "voltx_plugins.tensorboard_sink:TensorBoardSink", requires=("tensorboardX",), extra="tensorboard"),
    SinkSpec("mlflow", "an MLflow run in <runs root>/mlflow.db (SQLite), or $MLFLOW_TRACKING_URI",
             "voltx_plugins.mlflow_sink:MlflowSink", requires=("mlflow", "sqlalchemy", "alembic"), extra="mlflow",
             check="voltx_plugins.mlflow_sink:check_store"),
)


@hookimpl
def register_sinks(register):
    register(SinkSpec("csv", "metrics.csv in the run directory (one row per logged step)", CsvSink))
    for spec in TRACKERS:
        register(spec)
