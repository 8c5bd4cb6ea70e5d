"""Preemption never loses work, through real `voltx run` processes of the toy phase: a job
script's requeue with its exact command, the configured runs root, SIGHUP, a late second
signal, a damaged newest checkpoint, two resumes at once and a full disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voltx.testing import fake_plugin_dist, plugin_env
from voltx.errors import EXIT_CANT_CREATE, EXIT_DIVERGED, EXIT_PREEMPTED, EXIT_RUN_LOCKED, EXIT_USAGE
from voltx.runs.checkpoints import committed, damage, newest_intact
from voltx.runs.layout import list_run_dirs, load_manifest

TOY = Path(__file__).with_name("toy_phase.py")


@pytest.fixture
def env(tmp_path):
    site = fake_plugin_dist(tmp_path / "site", "voltx-toy", "voltx_toy_phase", TOY.read_text(), entry_name="toy")
    return {**os.environ, **plugin_env(site), "VOLTX_RUNS_DIR": str(tmp_path / "runs")}


def start(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "voltx", "run", "toy", "--progress", "plain", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voltx", "run", "toy", "--progress", "plain", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def wait_until(predicate, proc: subprocess.Popen | None = None, timeout=60.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = predicate()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) before {what}: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def logged_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    lines = [l for l in path.read_text().splitlines() if l.endswith("}")] if path.exists() else []
    return json.loads(lines[-1])["step"] if lines else 0


def run_at_step(runs: Path, step: int, proc) -> Path:
    return wait_until(lambda: next((r for r in list_run_dirs(runs) if logged_step(r) >= step), None), proc, what=f"step {step}")


def events(run_dir: Path, kind: str) -> list[dict]:
    return [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines()) if e["kind"] == kind]


def preempted_run(env, runs: Path, *args, step=3) -> Path:
    proc = start(env, *args)
    run_dir = run_at_step(runs, step, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == EXIT_PREEMPTED, proc.communicate()[1]
    return run_dir


# -- point 11: a requeued job re-runs its exact command -------------------------------------------


def test_requeue_with_the_same_command_resumes_and_a_different_one_is_refused(env, tmp_path):
    (tmp_path / "training_config.toml").write_text("[toy.presets.quick]\nepochs = 2\nsleep = 0.05\n")  # the cwd
    job = ["--preset", "quick", "run.log_every=1", "--resume", "auto"]

    first = start(env, *job)  # nothing to resume: starts that same preset, not the full recipe
    run_dir = run_at_step(tmp_path / "runs", 3, first)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == EXIT_PREEMPTED, err
    assert "nothing to resume" in err and "--preset quick" in err
    manifest = load_manifest(run_dir).raw
    assert manifest["preset"] == "quick" and manifest["overrides"] == ["run.log_every=1"]
    assert "stopped by SIGTERM" in manifest["message"]

    other = run(env, "--preset", "quick", "toy.lr=0.1", "--resume", "auto")
    assert other.returncode == EXIT_USAGE and "Traceback" not in other.stderr
    assert "toy.lr: this command sets 0.1, the run did not" in other.stderr
    assert "toy.run.log_every" not in other.stderr and "run.log_every: the run has 1, this command does not set it" in other.stderr
    assert "voltx run toy --progress plain --preset quick run.log_every=1 --resume auto" in other.stderr  # how it was started
    assert len(load_manifest(run_dir).record.attempts) == 1

    again = start(env, *job)  # the job script's requeue: the very same command
    wait_until(lambda: len(load_manifest(run_dir).record.attempts) == 2 and logged_step(run_dir) > 0, again, what="the resume")
    resumed_at = newest_intact(run_dir / "checkpoints")[0].step
    assert load_manifest(run_dir).record.message == f"resumed from step {resumed_at}"  # not "stopped by SIGTERM"
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert list_run_dirs(tmp_path / "runs") == [run_dir]
    assert load_manifest(run_dir).record.attempts[1]["resumed_from_step"] == resumed_at


# -- point 12: --resume looks where `voltx run` puts runs -----------------------------------------


def test_resume_finds_runs_under_the_configured_runs_dir(env, tmp_path):
    env = {k: v for k, v in env.items() if k != "VOLTX_RUNS_DIR"}
    (tmp_path / "training_config.toml").write_text('[paths]\nruns_dir = "store"\n')  # the cwd
    diverged = run(env, "nan_at_step=3", "run.log_every=1")  # diverged: a resumable run
    assert diverged.returncode == EXIT_DIVERGED, diverged.stderr
    (run_dir,) = list_run_dirs(tmp_path / "store")

    auto = run(env, "--resume", "auto")
    assert "nothing to resume" not in auto.stderr
    assert auto.returncode == EXIT_DIVERGED and len(load_manifest(run_dir).record.attempts) == 2, auto.stderr
    by_id = run(env, "--resume", run_dir.name[-6:])
    assert by_id.returncode == EXIT_DIVERGED and len(load_manifest(run_dir).record.attempts) == 3, by_id.stderr
    assert list_run_dirs(tmp_path / "store") == [run_dir] and not (tmp_path / "runs").exists()


# -- point 13: SIGHUP is a stop request; a late signal keeps the recorded exit code ---------------


def test_sighup_checkpoints_and_exits_75_even_when_the_hangup_comes_twice(env, tmp_path):
    proc = start(env, "sleep=0.05", "run.log_every=1")
    run_dir = run_at_step(tmp_path / "runs", 3, proc)
    proc.send_signal(signal.SIGHUP)
    proc.send_signal(signal.SIGHUP)  # the kernel and the shell (or tmux) each send it
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_PREEMPTED, err
    manifest = load_manifest(run_dir).raw
    assert manifest["status"] == "preempted" and manifest["exit_code"] == EXIT_PREEMPTED
    (preempted,) = events(run_dir, "preempted")
    assert preempted["signal"] == "SIGHUP" and newest_intact(run_dir / "checkpoints")[0].step == preempted["step"] >= 3


def test_a_signal_after_the_run_ended_keeps_the_exit_code_run_json_records(env, tmp_path):
    proc = start(env, "sleep=0.05", "run.log_every=1", "exit_delay=3")  # a slow teardown after run.json is written
    run_dir = run_at_step(tmp_path / "runs", 3, proc)
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: load_manifest(run_dir).record.status == "preempted", proc, what="run.json to say preempted")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_PREEMPTED == load_manifest(run_dir).record.exit_code, err


def test_progress_output_survives_its_terminal_going_away(monkeypatch):
    """A hung-up pty answers EIO to every write, often before the SIGHUP handler runs."""
    import errno

    from voltx.train import signals

    class HungUp:
        def write(self, text):
            raise OSError(errno.EIO, "Input/output error")

        def flush(self):
            raise OSError(errno.EIO, "Input/output error")

        def isatty(self):
            return True

    detached = []
    monkeypatch.setattr(signals, "_leave_dead_terminal", lambda: detached.append(True))  # not pytest's own fds
    out = signals.TerminalOutput(HungUp())
    assert out.write("step 3\n") == 7 and out.flush() is None and out.isatty() and detached

    class Full(HungUp):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):  # only a lost terminal is dropped
        signals.TerminalOutput(Full()).write("x")


# -- point 14: a damaged newest checkpoint --------------------------------------------------------


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(env, tmp_path):
    import torch
    from safetensors.torch import load_file

    run_dir = preempted_run(env, tmp_path / "runs", "sleep=0.05", "run.log_every=1", step=18)  # epochs end at 8, 16
    older, newest = committed(run_dir / "checkpoints")
    model = newest / "model.safetensors"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])  # a truncated copy

    done = run(env, "--resume", "auto")
    assert done.returncode == 0, done.stderr
    assert f"checkpoint {newest} is damaged (model.safetensors" in done.stderr and f"resuming from {older.name}" in done.stderr
    (event,) = events(run_dir, "checkpoint_damaged")
    assert event["path"] == str(newest) and event["resumed_from"] == int(older.name[5:])
    assert load_manifest(run_dir).record.attempts[1]["resumed_from_step"] == int(older.name[5:])
    assert all(damage(c) is None for c in committed(run_dir / "checkpoints"))

    reference = run(env, "run.log_every=1", "--runs-dir", str(tmp_path / "ref"))  # uninterrupted: the same numbers
    assert reference.returncode == 0, reference.stderr
    (ref_dir,) = list_run_dirs(tmp_path / "ref")
    a, b = load_file(str(ref_dir / "artifacts" / "toy.safetensors")), load_file(str(run_dir / "artifacts" / "toy.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- point 15: two --resume auto at once -----------------------------------------------------------


def test_a_second_resume_auto_while_the_first_holds_the_run_exits_81_naming_its_pid(env, tmp_path):
    run_dir = preempted_run(env, tmp_path / "runs", "sleep=0.1", "rows=400", "run.log_every=1", step=1)
    first = start(env, "--resume", "auto")
    try:
        wait_until(lambda: len(load_manifest(run_dir).record.attempts) == 2, first, what="the first resume")
        second = run(env, "--resume", "auto")
        assert second.returncode == EXIT_RUN_LOCKED, second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
        assert list_run_dirs(tmp_path / "runs") == [run_dir]  # no new full-recipe run
    finally:
        first.kill()
        first.communicate()


# -- point 16: disk full while writing a checkpoint -------------------------------------------------


def test_disk_full_while_checkpointing_exits_73_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    from voltx.train.runner import RunRequest, execute
    from test_preflight_progress import toy_plugins

    real, calls = safetensors.torch.save_file, []

    def disk_fills_up(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) < 3:  # the first checkpoint (model, extra) fits
            return real(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(b"\0" * 100)  # what got written before the disk filled
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")  # as safetensors says it

    monkeypatch.setattr(safetensors.torch, "save_file", disk_fills_up)
    req = RunRequest(phase="toy", overrides=("run.log_every=1",), runs_dir=str(tmp_path / "runs"), progress="plain")
    assert execute(req, plugins=toy_plugins(), restore_signals=True) == EXIT_CANT_CREATE
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    manifest = load_manifest(run_dir).raw
    assert manifest["status"] == "failed" and manifest["exit_code"] == EXIT_CANT_CREATE
    message = manifest["message"]
    assert "No space left on device" in message and str(run_dir / "checkpoints" / ".tmp-step-16") in message
    assert "MiB free" in message and "--resume" in message and f"{run_dir / 'checkpoints' / 'step-8'} is kept" in message
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-8"]  # temp dir removed, previous kept
    assert damage(run_dir / "checkpoints" / "step-8") is None
    assert "Traceback" not in (run_dir / "stdout.log").read_text()


def test_disk_full_while_writing_the_logs_exits_73_without_a_traceback(tmp_path, monkeypatch):
    import errno

    from voltx.runs.store import RunWriter
    from voltx.train.runner import RunRequest, execute
    from test_preflight_progress import toy_plugins

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.paths.metrics))

    monkeypatch.setattr(RunWriter, "flush", full)  # the log writer's error surfaces before the checkpoint
    req = RunRequest(phase="toy", runs_dir=str(tmp_path / "runs"), progress="plain")
    assert execute(req, plugins=toy_plugins(), restore_signals=True) == EXIT_CANT_CREATE
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    message = load_manifest(run_dir).record.message
    assert message.startswith(f"No space left on device writing {run_dir / 'metrics.jsonl'}") and f"--resume {run_dir}" in message
    assert not events(run_dir, "exception")
