"""Which run `--resume` continues, and how a requeued command is compared with the run's own."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from voltx.errors import EXIT_RUN_LOCKED, RunLockedError, UsageError
from voltx.runs.layout import new_run_id
from voltx.runs.lock import RunLock
from voltx.runs.records import Manifest
from voltx.runs.resumable import command_differences, find_resumable, resume_target

TABLES = {"paths", "hardware", "run", "translator", "f1"}


def stored_run(root: Path, status: str, *, preset=None, overrides=(), argv=None) -> Path:
    run_dir = root / "translator" / new_run_id()
    run_dir.mkdir(parents=True)
    manifest = {"id": run_dir.name, "phase": "translator", "status": status, "preset": preset, "overrides": list(overrides),
                "argv": argv or ["voltx", "run", "translator"], "pid": os.getpid(), "host": socket.gethostname(),
                "created_at": time.time()}  # orders runs started in the same second
    (run_dir / "run.json").write_text(json.dumps(manifest))
    (run_dir / "overrides.txt").write_text("".join(f"{o}\n" for o in overrides))
    return run_dir


def test_the_same_settings_spelt_differently_are_the_same_command(tmp_path):
    run_dir = stored_run(tmp_path, "preempted", preset="quick", overrides=["encoder.lr=0.1", "hardware.device=cpu"])
    manifest = Manifest.parse(json.loads((run_dir / "run.json").read_text()))
    same = ["translator.encoder.lr=1e-1", 'hardware.device="cpu"']
    assert command_differences(run_dir, manifest, "translator", "quick", same, TABLES) == []
    assert command_differences(run_dir, manifest, "translator", None, same, TABLES) == ["preset: the run has quick, this command none"]
    assert command_differences(run_dir, manifest, "translator", "quick", ["encoder.lr=0.2"], TABLES) == [
        "hardware.device: the run has cpu, this command does not set it",
        "translator.encoder.lr: the run has 0.1, this command 0.2",
    ]


def test_runs_from_before_run_json_kept_overrides_are_compared_with_overrides_txt(tmp_path):
    run_dir = stored_run(tmp_path, "preempted", overrides=["encoder.epochs=2"])
    raw = json.loads((run_dir / "run.json").read_text())
    del raw["overrides"]
    manifest = Manifest.parse(raw)
    assert command_differences(run_dir, manifest, "translator", None, ["encoder.epochs=2"], TABLES) == []


def test_a_different_command_is_refused_with_the_difference_and_how_the_run_started(tmp_path):
    argv = ["voltx", "run", "translator", "--preset", "quick", "--resume", "auto"]
    stored_run(tmp_path, "preempted", preset="quick", argv=argv)
    with pytest.raises(UsageError) as err:
        resume_target(tmp_path, "translator", "auto", preset="full", overrides=(), tables=TABLES)
    assert "preset: the run has quick, this command full" in str(err.value)
    assert "the run was started with: voltx run translator --preset quick --resume auto" in str(err.value)


def test_no_preset_and_no_overrides_continue_any_run_with_its_saved_config(tmp_path):
    run_dir = stored_run(tmp_path, "stale", preset="quick", overrides=["encoder.lr=0.1"])
    assert resume_target(tmp_path, "translator", "auto", preset=None, overrides=(), tables=TABLES) == run_dir


def test_auto_refuses_a_newest_run_whose_writer_is_alive(tmp_path):
    stored_run(tmp_path, "preempted")
    live = stored_run(tmp_path, "running")
    lock = RunLock(live / "lock")
    lock.acquire()
    try:
        with pytest.raises(RunLockedError) as err:
            find_resumable(tmp_path, "translator")
        assert err.value.exit_code == EXIT_RUN_LOCKED and f"pid {os.getpid()}" in str(err.value)
    finally:
        lock.release()
    assert find_resumable(tmp_path, "translator") == live  # its writer is gone: stale, resumable


def test_auto_resumes_nothing_after_a_finished_run(tmp_path):
    stored_run(tmp_path, "preempted")
    stored_run(tmp_path, "finished")
    assert find_resumable(tmp_path, "translator") is None
