"""The ``mlflow`` sink: an MLflow run in a local SQLite store (no server, no file store).

The store is ``sqlite:///<runs root>/mlflow.db`` unless ``MLFLOW_TRACKING_URI`` names another
(MLflow no longer accepts a plain directory store); artifacts go beside it in
``<runs root>/mlflow-artifacts``. One MLflow experiment per phase, one MLflow run per voltx run:
its id is stored in the run store (``<run>/sinks/mlflow.json``), so a resume continues it.

What goes where: the resolved config as params (``run.seed``, ``<phase>.lr`` ...); scalars as
metrics, batched (``log_batch`` at most every :data:`FLUSH_SECONDS` or :data:`BATCH` metrics);
verdicts as tags (``deliverable.<metric>`` = ``PASS: ...``), the last alert as a tag, the end
as the run's status; each committed checkpoint as artifacts when ``[run].mlflow_checkpoints``.
``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`` shows it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from voltx.errors import CantCreateError
from voltx.runs.records import Alert, Checkpoint, Deliverable, End, Record
from voltx_plugins.tracker_common import RunFacts, load_state, save_state, scalars, verdict_text

BATCH = 900  # MLflow takes at most 1000 metrics per log_batch
FLUSH_SECONDS = 2.0
_PARAMS_PER_CALL = 100  # MLflow's limit for params per log_batch
_PARAM_TEXT = 6000  # MLflow's limit for a param value's length
_STATUS = {"finished": "FINISHED", "failed": "FAILED", "diverged": "FAILED", "preempted": "KILLED", "interrupted": "KILLED"}


def tracking_uri(runs_root: Path, output: Path | None = None) -> str:
    """``output`` (a URI, or a path to a SQLite file), else $MLFLOW_TRACKING_URI, else the runs root's store."""
    if output is not None:
        text = str(output)
        return text if "://" in text else f"sqlite:///{Path(text).resolve()}"
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(runs_root).resolve() / 'mlflow.db'}"


def check_store(runs_root: Path, output: Path | None = None) -> None:
    """Refuse, before the run starts, a SQLite store that cannot be written: a read-only file,
    folder or file system (tried for real: permission bits say nothing to root or to a read-only mount)."""
    uri = tracking_uri(runs_root, output)
    if not uri.startswith("sqlite:///"):
        return  # a tracking server: whether it answers is the sink's to find out, as an alert
    db = Path(uri[len("sqlite:///"):])
    folder = next((p for p in db.parents if p.exists()), None)
    try:
        if db.exists():
            with open(db, "r+b"):
                pass
        elif folder is None or not folder.is_dir():
            raise NotADirectoryError(f"{folder or db.parent} is not a folder")
        else:
            tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise CantCreateError(f"the MLflow store {db} cannot be written ({exc.strerror or exc}): set "
                              "MLFLOW_TRACKING_URI=sqlite:////a/writable/path/mlflow.db, choose another runs root "
                              "(--runs-dir), or drop the mlflow sink.") from None


class MlflowSink:
    """Streams the run into MLflow (the store ``output`` names, else the default one). ``replay``
    (``voltx export --to mlflow``) adds a new MLflow run and leaves the run directory as it is."""

    def __init__(self, run_dir: Path, output: Path | None = None, replay: bool = False):
        facts = RunFacts.read(run_dir)
        runs_root = Path(run_dir).resolve().parent.parent
        self.location = uri = tracking_uri(runs_root, output)
        """The tracking URI written to (``voltx export --to mlflow`` says it)."""
        if uri.startswith("sqlite:///"):  # SQLite creates the file, not its folder
            Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self._client = client = MlflowClient(tracking_uri=uri)
        artifacts = (Path(output).resolve().parent if output is not None and "://" not in str(output) else runs_root) / "mlflow-artifacts"
        experiment = client.get_experiment_by_name(f"voltx/{facts.phase}")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(
            f"voltx/{facts.phase}", artifact_location=artifacts.as_uri())
        state = {} if replay else load_state(run_dir, "mlflow")
        if state.get("run_id") and state.get("tracking_uri") == uri:
            self._run_id = state["run_id"]
            client.update_run(self._run_id, status="RUNNING")
        else:
            run = client.create_run(experiment_id, run_name=facts.id, tags={"voltx.run_id": facts.id, "voltx.phase": facts.phase})
            self._run_id = run.info.run_id
            params = [Param(k, str(v)[:_PARAM_TEXT]) for k, v in facts.config.items()]
            for i in range(0, len(params), _PARAMS_PER_CALL):
                client.log_batch(self._run_id, params=params[i:i + _PARAMS_PER_CALL])
            if not replay:
                save_state(run_dir, "mlflow", {"run_id": self._run_id, "tracking_uri": uri})
        self._checkpoints = bool(facts.config.get("run.mlflow_checkpoints", False)) and not replay
        self._metrics: list[Metric] = []
        self._tags: dict[str, str] = {}
        self._flushed = time.monotonic()
        self._step = 0

    def write(self, record: Record) -> None:
        if record.step is not None:
            self._step = record.step
        stamp = int((getattr(record, "time", None) or time.time()) * 1000)
        self._metrics.extend(Metric(key, float(value), stamp, self._step) for key, value in scalars(record).items())
        if isinstance(record, Deliverable):
            self._tags[f"deliverable.{record.metric}"] = verdict_text(record)
        elif isinstance(record, Alert):
            self._tags["voltx.last_alert"] = f"[{record.rule}] step {self._step}: {record.message}"
        elif isinstance(record, Checkpoint) and self._checkpoints and record.path:
            self._flush()
            self._client.log_artifacts(self._run_id, record.path, f"checkpoints/step-{record.step}")
        elif isinstance(record, End):
            self._tags.update({"voltx.status": record.status, "voltx.exit_code": str(record.exit_code)})
            self._flush()
            self._client.set_terminated(self._run_id, _STATUS.get(record.status, "FAILED"))
            return
        if len(self._metrics) >= BATCH or self._tags or time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush()

    def _flush(self) -> None:
        tags = [RunTag(k, v) for k, v in self._tags.items()]
        while self._metrics or tags:
            self._client.log_batch(self._run_id, metrics=self._metrics[:BATCH], tags=tags)
            self._metrics, tags = self._metrics[BATCH:], []
        self._tags.clear()
        self._flushed = time.monotonic()

    def close(self) -> None:
        self._flush()
