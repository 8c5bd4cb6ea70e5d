"""The ``wandb`` sink: a W&B run, offline unless ``WANDB_MODE`` says otherwise.

Offline-first: no login, no network. The run lands in ``<run>/wandb/offline-run-*`` and
``wandb sync <run>/wandb/offline-run-*`` uploads it later (``wandb leet`` opens it). Its W&B id
is stored in the run store (``<run>/sinks/wandb.json``), so a resumed voltx run continues the same
W&B run (``resume="allow"``). Steps are logged against a ``step`` axis of their own
(``define_metric``), so a resume that logs steps again from its checkpoint is not dropped by
W&B's own monotonic ``_step``.

What goes where: the resolved config as the W&B config; every logged step's scalars
(``loss/<term>``, ``lr`` ...), evaluations (``eval/<stage>/<metric>``) as history; verdicts in the
summary (``deliverable/<metric>`` value, ``.../passed``, ``.../threshold``); alerts as W&B alerts
when online (``run.alert``) and as ``alerts/last`` in the summary either way; the run's end status
and exit code in the summary. ``WANDB_PROJECT`` / ``WANDB_ENTITY`` choose where it syncs to
(default project ``voltx``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import wandb

from voltx.runs.records import Alert, Checkpoint, Deliverable, End, Record
from voltx_plugins.tracker_common import RunFacts, load_state, save_state, scalars, verdict_text

_LEVELS = {"error": "ERROR", "warning": "WARN", "info": "INFO"}


def wandb_id(run_id: str) -> str:
    """A W&B run id for a voltx run id (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", run_id)[:128]


class WandbSink:
    """Writes the W&B run under ``<run>/wandb`` (or under ``output``). ``replay``
    (``voltx export --to wandb``) leaves the run directory as it is: no W&B id is stored there."""

    def __init__(self, run_dir: Path, output: Path | None = None, replay: bool = False):
        facts = RunFacts.read(run_dir)
        state = {} if replay else load_state(run_dir, "wandb")
        run_id = state.get("run_id") or wandb_id(facts.id)
        self._mode = os.environ.get("WANDB_MODE") or "offline"
        folder = Path(output) if output is not None else Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            mode=self._mode, dir=str(folder), id=run_id, resume="allow", project=os.environ.get("WANDB_PROJECT") or "voltx",
            name=f"{facts.phase}/{facts.id}", group=facts.phase, job_type="train", config=facts.config,
            reinit="create_new", settings=wandb.Settings(console="off", x_disable_stats=True, quiet=True, silent=True),
        )
        if not replay:
            save_state(run_dir, "wandb", {"run_id": run_id, "mode": self._mode, "dir": str(self._run.dir)})
        self._run.define_metric("step")
        self._run.define_metric("*", step_metric="step")
        self._step = 0
        self._alerts = 0

    def write(self, record: Record) -> None:
        run = self._run
        if record.step is not None:
            self._step = record.step
        values = scalars(record)
        if values:
            run.log({"step": self._step, **values})
        if isinstance(record, Deliverable):
            key = f"deliverable/{record.metric}"
            run.summary.update({key: record.value, f"{key}/passed": record.passed, f"{key}/threshold": record.threshold,
                                f"{key}/verdict": verdict_text(record)})
        elif isinstance(record, Alert):
            self._alerts += 1
            run.summary.update({"alerts/count": self._alerts, "alerts/last": f"[{record.rule}] step {self._step}: {record.message}"})
            if self._mode == "online":
                run.alert(title=f"voltx {record.rule}", text=record.message, level=_LEVELS.get(record.severity or "", "WARN"))
        elif isinstance(record, Checkpoint):
            run.summary["checkpoint/last_step"] = record.step
        elif isinstance(record, End):
            run.summary.update({"voltx/status": record.status, "voltx/exit_code": record.exit_code})

    def close(self) -> None:
        self._run.finish()
