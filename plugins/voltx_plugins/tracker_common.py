"""What the tracker sinks (W&B, TensorBoard, MLflow) share: the run's identity and config, the
scalars of a record under one naming, and the small state file that lets a resumed run continue
the tracker's run (``<run>/sinks/<name>.json``). Import-light: the trackers' own packages are
imported by their sink modules only."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voltx.formatting import flatten
from voltx.runs.records import Deliverable, Evaluation, Event, Manifest, Record, RecordError, StepRecord

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_STEP_FIELDS = ("lr", "samples_per_sec", "steps_per_sec", "wall_steps_per_sec")
"""A step record's numbers a tracker plots besides the losses: the training speed and the wall-clock
pace the ETA uses (evaluations and checkpoint writes included), so a tracker shows what `voltx status` does."""


@dataclass
class RunFacts:
    """The run a tracker mirrors: its id, phase and resolved config (flattened ``table.key``)."""

    dir: Path
    id: str
    phase: str
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, run_dir: Path) -> "RunFacts":
        run_dir = Path(run_dir)
        try:  # through the run store's record type (voltx.runs.records: the public API a sink uses)
            manifest = Manifest.parse(json.loads((run_dir / "run.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, RecordError):
            manifest = Manifest()  # a damaged run.json: the folder names say the id and phase
        config: dict[str, Any] = {}
        try:
            config = flat_config(tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError):
            pass  # a tracker without the config is still a tracker of the metrics
        return cls(run_dir, manifest.id or run_dir.name, manifest.phase or run_dir.parent.name, config)


def flat_config(table: dict[str, Any]) -> dict[str, Any]:
    """{"run": {"seed": 42}} -> {"run.seed": 42}; lists become their JSON text."""
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in flatten(table, ".").items()}


def scalars(record: Record) -> dict[str, float]:
    """The numbers a tracker plots for a record, by tag: ``loss/<term>``, ``lr``, ... (and numeric
    extras such as ``rar/iterations_mean``) for a step,
    ``eval/<stage>/<metric>`` for an evaluation, ``<kind>/<field>`` for other events' numeric
    fields (RAR records: ``rar/iterations_mean``). Verdicts, alerts and lifecycle events are text."""
    if isinstance(record, StepRecord):
        out = {f"loss/{k}": v for k, v in record.losses.items() if v is not None}
        out.update({k: getattr(record, k) for k in _STEP_FIELDS if getattr(record, k) is not None})
        out.update({k: v for k, v in record.extra.items() if _number(v)})  # measured extras: rar/iterations_mean
        return out
    if isinstance(record, Evaluation):
        return {f"eval/{k}": v for k, v in record.metrics.items() if v is not None}
    if type(record) is Event and record.kind not in ("start", "stage_start", "stage_end"):
        return {f"{record.kind}/{k.split('/', 1)[-1]}": v for k, v in record.extra.items() if _number(v)}
    return {}


def verdict_text(record: Deliverable) -> str:
    value = "n/a" if record.value is None else f"{record.value:.6g}"
    target = f" (target {record.op} {record.threshold:g})" if record.op and record.threshold is not None else ""
    return f"{'PASS' if record.passed else 'FAIL'}: {record.metric} = {value}{target}"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_state(run_dir: Path, name: str) -> dict[str, Any]:
    """What a sink stored about its tracker run (its id) in an earlier attempt; {} if nothing."""
    try:
        state = json.loads((Path(run_dir) / "sinks" / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def save_state(run_dir: Path, name: str, state: dict[str, Any]) -> None:
    """Store the tracker run's id in the run store, so a resume continues the same tracker run."""
    folder = Path(run_dir) / "sinks"
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{name}.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, folder / f"{name}.json")
