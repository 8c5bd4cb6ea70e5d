"""Built-in metric sink: ``csv`` writes metrics.csv beside metrics.jsonl for spreadsheets.

Enable with ``[run].sinks = ["csv"]`` (or ``run.sinks=["csv"]`` on the command line).
"""

from __future__ import annotations

import csv
from pathlib import Path

from voltx import hookimpl
from voltx.plugin_specs import SinkSpec


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
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.csv"
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer: csv.DictWriter | None = None

    def write(self, record: dict) -> None:
        row = flatten(record)
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


@hookimpl
def register_sinks(register):
    register(SinkSpec("csv", "metrics.csv in the run directory (one row per logged step)", CsvSink))
