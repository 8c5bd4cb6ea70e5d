"""[run].mirror: committed checkpoints copied off the machine (fsspec's memory and local file
systems here), marker last; a fresh machine resumes from the mirror bit for bit; a mirror that
is unreachable or holds another run is refused before training; a failing upload is an alert."""

from __future__ import annotations

import json
import shutil
import signal
import uuid
from pathlib import Path

import fsspec
import pytest
from plugin_support import TOY_SOURCE, TOY_STEPS, load_source, only_run, read_jsonl

from voltx import hookimpl
from voltx.errors import EXIT_PREEMPTED, PreflightError
from voltx.plugins import load_plugins
from voltx.runs.checkpoints import COMMITTED, newest_intact
from voltx.runs.layout import load_manifest
from voltx.runs.mirror import MirrorSink, mirror_lag, preflight, pull_newest
from voltx.runs.records import Checkpoint
from voltx.runs.store import RunWriter


class StopAt:
    """Sends this process SIGUSR1 at a step: the loop checkpoints and exits 75 (a spot preemption)."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def on_step_logged(self, run, record):
        if record["step"] == self.step:
            signal.raise_signal(signal.SIGUSR1)


def run_toy(monkeypatch, runs: Path, *overrides: str, resume: str | None = None, stop_at: int | None = None) -> int:
    from voltx.train.runner import RunRequest, execute

    toy = load_source(monkeypatch, "voltx_toy", TOY_SOURCE)
    extra = [("toy", toy)] + ([("stop", StopAt(stop_at))] if stop_at else [])
    ps = load_plugins(extra=extra, refresh=True)
    req = RunRequest(phase="toy", runs_dir=str(runs), overrides=("run.log_every=1", "run.checkpoint_every=4", *overrides), resume=resume)
    return execute(req, plugins=ps, restore_signals=True)


def final_weights(runs: Path) -> dict:
    from safetensors.torch import load_file

    checkpoint, _ = newest_intact(only_run(runs, "toy") / "checkpoints")
    assert checkpoint.step == TOY_STEPS
    return load_file(str(checkpoint.path / "model.safetensors"))


def test_mirror_then_wipe_then_resume_on_a_fresh_machine_is_bitwise(tmp_path, monkeypatch, cli_in_process):
    import torch

    assert run_toy(monkeypatch, tmp_path / "plain") == 0
    url = f"memory://voltx-{uuid.uuid4().hex}/runs"
    runs = tmp_path / "spot"
    assert run_toy(monkeypatch, runs, f"run.mirror={url}", stop_at=6) == EXIT_PREEMPTED
    run_dir = only_run(runs, "toy")
    fs = fsspec.filesystem("memory")
    remote = f"/voltx-{url.split('voltx-')[1].split('/')[0]}/runs/toy/{run_dir.name}"
    mirrored = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{remote}/checkpoints", detail=False))
    local = sorted(p.name for p in (run_dir / "checkpoints").iterdir() if (p / COMMITTED).exists())
    assert mirrored == local and all(fs.exists(f"{remote}/checkpoints/{s}/{COMMITTED}") for s in mirrored)  # pruned there too
    assert mirror_lag(run_dir).startswith("mirror up to date (step ")
    status = json.loads(cli_in_process("status", "--json", "--runs-dir", str(runs)).stdout)
    assert status["runs"][0]["mirror"] == mirror_lag(run_dir)
    shutil.rmtree(runs)  # the spot instance is gone, and its disk with it

    assert run_toy(monkeypatch, runs, f"run.mirror={url}", resume="auto") == 0
    run_dir = only_run(runs, "toy")
    resumed = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["from_step"] >= 6
    got, want = final_weights(runs), final_weights(tmp_path / "plain")
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert json.loads(fs.cat_file(f"{remote}/run.json"))["status"] == "finished"  # the mirror knows it is done
    assert pull_newest(url, tmp_path / "elsewhere", "toy") is None  # nothing unfinished there to pull


def _writer(tmp_path: Path) -> RunWriter:
    return RunWriter.create(tmp_path / "runs", "toy", config_toml="", overrides=[], preset=None, argv=[])


def test_a_mirror_holding_another_run_is_refused(tmp_path):
    url = f"memory://voltx-{uuid.uuid4().hex}"
    writer = _writer(tmp_path)
    preflight(url, writer.dir)  # claims the folder for this run; again is fine
    preflight(url, writer.dir)
    writer.update_manifest(created_at=1.0)  # now it is "another" run with the same folder name
    with pytest.raises(PreflightError, match=r"holds another run at .* refusing to mix their checkpoints"):
        preflight(url, writer.dir)
    writer.close("failed", 1)


@pytest.mark.parametrize("url, expected", [
    ("file:///proc/voltx-no-mirror/runs", "cannot be written"),  # a read-only file system
    ("voltxnosuchprotocol://bucket/runs", "not a URL fsspec can open"),
])
def test_an_unreachable_mirror_is_refused_before_training(tmp_path, monkeypatch, url, expected):
    with pytest.raises(PreflightError, match=expected):
        preflight(url, _writer(tmp_path).dir)
    runs = tmp_path / "run"
    assert run_toy(monkeypatch, runs, f"run.mirror={url}") == PreflightError.exit_code
    manifest = load_manifest(only_run(runs, "toy")).record
    assert (manifest.status, manifest.exit_code) == ("failed", PreflightError.exit_code) and expected in manifest.message
    assert not (only_run(runs, "toy") / "metrics.jsonl").exists()  # refused before the first step


def test_uploads_marker_last_and_a_failing_upload_is_an_alert_then_retried(tmp_path):
    writer = _writer(tmp_path)
    step = writer.dir / "checkpoints" / "step-4"
    step.mkdir(parents=True)
    for name in ("model.safetensors", "state.json", COMMITTED):
        (step / name).write_text(name)
    alerts: list[str] = []
    sink = MirrorSink(f"memory://voltx-{uuid.uuid4().hex}", writer.dir, lambda name, message: alerts.append(message), backoff=0.0)
    puts: list[str] = []
    real_put, failures = sink._fs.put_file, [2]

    def flaky_put(src, dst, **kw):
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("connection reset")
        puts.append(dst.rsplit("/", 1)[-1])
        return real_put(src, dst, **kw)

    sink._fs.put_file = flaky_put
    sink.write(Checkpoint(kind="checkpoint", step=4, path=str(step)))
    sink.close()
    assert puts[:3] == ["model.safetensors", "state.json", COMMITTED]  # the marker after the files
    assert len(alerts) == 1 and "copying checkpoint step-4 failed (ConnectionError: connection reset); retrying" in alerts[0]
    state = json.loads((writer.dir / "mirror.json").read_text())
    assert (state["step"], state["error"]) == (4, None)
    writer.close("finished", 0)


def test_a_cloud_mirror_without_its_package_names_the_extra(tmp_path, monkeypatch):
    def missing(protocol, *args, **kwargs):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec.core, "url_to_fs", missing)  # as on a machine without s3fs
    with pytest.raises(PreflightError, match=r'needs a package that is not installed \(Install s3fs to access S3\): pip install "voltx\[s3\]"'):
        preflight("s3://bucket/runs", _writer(tmp_path).dir)
