"""The built-in tracker sinks write what each tracker's own reader reads back: a run of two attempts
(preempted at step 6, resumed from the checkpoint at step 4) streamed live, then replayed by
``voltx export``. The trackers' packages are the [test] extra's; they are imported here only."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from tracker_readers import tensorboard_scalars, tensorboard_texts, wandb_history, wandb_records, wandb_summary

from voltx.errors import CantCreateError
from voltx.plugins import load_plugins
from voltx.runs.export import export_run
from voltx.runs.sink_feed import SinkFeed, check_sinks
from voltx.runs.store import RunWriter

TRACKERS = ["tensorboard", "wandb", "mlflow"]
CONFIG = '[run]\nseed = 42\nsinks = ["tensorboard", "wandb", "mlflow"]\nmlflow_checkpoints = true\n\n[toy]\nlr = 0.05\n'
FIRST = {step: 10.0 - step for step in range(1, 7)}  # attempt 1 logs steps 1-6, checkpoint at 4
SECOND = {step: 100.0 + step for step in range(5, 9)}  # attempt 2 resumes from 4: steps 5-8 again
KEPT = {**{s: v for s, v in FIRST.items() if s <= 4}, **SECOND}


def _attempt(writer: RunWriter, specs, alerts: list) -> None:
    def report(name, message):
        alerts.append(message)
        writer.event("alert", rule="sink", severity="error", sink=name, message=message)

    writer.attach_sinks(SinkFeed(specs, writer.dir, report))


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """A run with the three trackers on: attempt 1 preempted after step 6, attempt 2 to the end.

    Its runs root is in memory (/dev/shm) where there is one: creating an MLflow SQLite store
    runs ~60 schema migrations, each committed with an fsync (10 s there, up to 30 s on a busy disk)."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="voltx-trackers-", dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path_factory.mktemp("trackers")
    env = {k: os.environ.pop(k) for k in [k for k in os.environ if k.startswith(("WANDB_", "MLFLOW_"))]}  # the defaults: offline, the runs root's store
    try:
        yield _stream(base / "runs")
    finally:
        os.environ.update(env)
        if base.parent == shm:
            shutil.rmtree(base, ignore_errors=True)


def _stream(root: Path) -> Path:
    specs = check_sinks(load_plugins(refresh=True), TRACKERS, root)
    alerts: list[str] = []
    writer = RunWriter.create(root, "toy", config_toml=CONFIG, overrides=[], preset=None, argv=[])
    _attempt(writer, specs, alerts)
    writer.event("start", phase="toy")
    for step, loss in FIRST.items():
        writer.log_metrics({"step": step, "losses": {"loss": loss}, "lr": 0.05})
        if step == 4:
            (writer.dir / "checkpoints" / "step-4").mkdir(parents=True)
            (writer.dir / "checkpoints" / "step-4" / "model.safetensors").write_bytes(b"weights")
            writer.event("checkpoint", step=4, path=str(writer.dir / "checkpoints" / "step-4"), seconds=0.1)
    writer.close("preempted", 75, "stopped by SIGTERM")
    writer = RunWriter.resume(writer.dir, [])
    _attempt(writer, specs, alerts)
    writer.mark_resumed(4)
    for step, loss in SECOND.items():
        writer.log_metrics({"step": step, "losses": {"loss": loss}, "lr": 0.05})
    writer.event("evaluation", stage="fit", step=8, metrics={"fit/mse": 0.25})
    writer.event("deliverable", step=8, metric="fit/mse", op="<", threshold=0.5, value=0.25, passed=True)
    writer.event("alert", rule="loss-spike", severity="warning", step=8, message="loss 108 is 5x the median")
    writer.close("finished", 0)
    assert alerts == []  # no sink failed
    return writer.dir


def test_tensorboard_continues_the_event_files_without_duplicated_steps(streamed):
    logdir = streamed / "tensorboard"
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 2  # one file per attempt, in one directory
    scalars = tensorboard_scalars(logdir)  # raises on a step shown twice
    assert scalars["loss/loss"] == pytest.approx(KEPT)
    assert scalars["eval/fit/mse"] == {8: 0.25}
    texts = tensorboard_texts(logdir)
    assert texts["deliverables/fit/mse"] == ["PASS: fit/mse = 0.25 (target < 0.5)"]
    assert texts["alerts/loss-spike"] == ["loss 108 is 5x the median"]
    assert (logdir / "hparams").is_dir()


def test_wandb_offline_run_is_one_run_across_the_resume(streamed):
    state = json.loads((streamed / "sinks" / "wandb.json").read_text())
    files = sorted(streamed.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2  # one offline run directory per attempt, the same W&B run id
    first, second = (wandb_records(f) for f in files)
    for records in (first, second):
        [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert (run.run_id, run.project, run.display_name, run.run_group) == (state["run_id"], "voltx", f"toy/{streamed.name}", "toy")
    assert {row["step"]: row["loss/loss"] for row in wandb_history(first) if "loss/loss" in row} == FIRST
    assert {row["step"]: row["loss/loss"] for row in wandb_history(second) if "loss/loss" in row} == SECOND
    config = {i.key: json.loads(i.value_json) for r in first if r.WhichOneof("record_type") == "run" for i in r.run.config.update}
    assert config["run.seed"] == 42 and config["toy.lr"] == 0.05
    summary = wandb_summary(second)
    assert (summary["deliverable/fit/mse"], summary["deliverable/fit/mse/passed"], summary["deliverable/fit/mse/threshold"]) == (0.25, True, 0.5)
    assert summary["alerts/last"] == "[loss-spike] step 8: loss 108 is 5x the median"
    assert (summary["voltx/status"], summary["voltx/exit_code"]) == ("finished", 0)
    assert wandb_summary(first)["voltx/status"] == "preempted"


def _mlflow(root: Path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name == "voltx/toy"]
    return client, client.search_runs([experiment.experiment_id])


def test_mlflow_run_in_the_sqlite_store(streamed):
    client, runs = _mlflow(streamed.parent.parent)
    [run] = [r for r in runs if r.info.run_name == streamed.name]
    assert run.info.run_id == json.loads((streamed / "sinks" / "mlflow.json").read_text())["run_id"]
    assert run.info.status == "FINISHED"
    assert (run.data.params["run.seed"], run.data.params["toy.lr"]) == ("42", "0.05")
    assert run.data.tags["deliverable.fit/mse"] == "PASS: fit/mse = 0.25 (target < 0.5)"
    assert run.data.tags["voltx.last_alert"] == "[loss-spike] step 8: loss 108 is 5x the median"
    history = client.get_metric_history(run.info.run_id, "loss/loss")
    latest = {}
    for metric in sorted(history, key=lambda m: m.timestamp):
        latest[metric.step] = metric.value
    assert latest == pytest.approx(KEPT) and run.data.metrics["eval/fit/mse"] == 0.25
    # [run].mlflow_checkpoints: each committed checkpoint as artifacts, beside the store
    [artifact] = client.list_artifacts(run.info.run_id, "checkpoints/step-4")
    assert artifact.path == "checkpoints/step-4/model.safetensors"
    assert Path(client.download_artifacts(run.info.run_id, artifact.path, str(streamed.parent.parent / "dl"))).read_bytes() == b"weights"


def test_export_replays_the_run_into_each_tracker(streamed, tmp_path):
    tb = export_run(streamed, "tensorboard", tmp_path / "tb").path
    assert tensorboard_scalars(tb)["loss/loss"] == pytest.approx(KEPT)  # superseded steps dropped
    wb = export_run(streamed, "wandb", tmp_path / "wb").path
    [file] = list(Path(wb).glob("wandb/offline-run-*/run-*.wandb"))
    records = wandb_records(file)
    assert {row["step"]: row["loss/loss"] for row in wandb_history(records) if "loss/loss" in row} == KEPT
    assert wandb_summary(records)["deliverable/fit/mse/passed"] is True
    before = (streamed / "sinks" / "mlflow.json").read_text()
    exported = export_run(streamed, "mlflow")  # into the live sink's store: a second MLflow run
    assert str(exported.path).endswith("mlflow.db")
    client, runs = _mlflow(streamed.parent.parent)
    assert len([r for r in runs if r.data.tags["voltx.run_id"] == streamed.name]) == 2
    assert (streamed / "sinks" / "mlflow.json").read_text() == before  # a replay leaves the run directory as it is


def test_a_read_only_mlflow_store_is_refused_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////proc/voltx-test/mlflow.db")  # a read-only file system
    with pytest.raises(CantCreateError, match=r"the MLflow store /proc/voltx-test/mlflow.db cannot be written .*MLFLOW_TRACKING_URI"):
        check_sinks(load_plugins(refresh=True), ["mlflow"], tmp_path / "runs")


def test_a_step_records_paces_reach_the_trackers():
    """The trackers plot what `voltx status` computes its ETA from: the wall-clock pace too."""
    from voltx.runs.records import parse_step
    from voltx_plugins.tracker_common import scalars

    record = parse_step({"step": 3, "losses": {"loss": 0.5}, "lr": 0.01, "samples_per_sec": 96.0,
                         "steps_per_sec": 3.0, "wall_steps_per_sec": 2.5})
    assert scalars(record) == {"loss/loss": 0.5, "lr": 0.01, "samples_per_sec": 96.0, "steps_per_sec": 3.0,
                               "wall_steps_per_sec": 2.5}
