"""The sidecar as a real process: ~1 Hz lines, exits with the watched process or on SIGTERM,
survives sampling errors; and a real run records system.jsonl through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import fake_pynvml_gpus as fake_nvml
from voltx.testing import fake_plugin_dist, plugin_env
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.telemetry import sidecar
from voltx.telemetry.sidecar import start_sidecar, stop_sidecar

TOY = Path(__file__).parents[1] / "train" / "toy_phase.py"


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def test_writes_about_once_per_interval_and_exits_when_the_watched_process_dies(tmp_path):
    run_dir = tmp_path / "runs" / "p" / "r"
    run_dir.mkdir(parents=True)
    watched = subprocess.Popen(["sleep", "60"])
    proc = start_sidecar(run_dir, watched.pid, 1.0)
    try:
        deadline = time.time() + 20
        while len(lines(run_dir / "system.jsonl")) < 4 and time.time() < deadline:
            time.sleep(0.1)
        recs = lines(run_dir / "system.jsonl")
        gaps = [b["time"] - a["time"] for a, b in zip(recs, recs[1:])]
        # on schedule (a late sample on a loaded machine is followed by a shorter gap), one per interval
        assert len(gaps) >= 3 and all(0.3 < g < 2.0 for g in gaps) and 0.85 < sum(gaps) / len(gaps) < 1.3, gaps
        assert recs[-1]["proc"]["pid"] == watched.pid
        assert recs[-1]["disk_path"] == str(tmp_path / "runs")  # the runs root's disk
        watched.kill()
        watched.wait()
        assert proc.wait(timeout=30) == 0  # noticed at its next check (each interval); the limit is for a loaded machine
    finally:
        watched.kill()
        stop_sidecar(proc)


def test_sigterm_stops_it_at_once(tmp_path):
    proc = start_sidecar(tmp_path, os.getpid(), 30.0)
    deadline = time.time() + 20
    while not lines(tmp_path / "system.jsonl") and time.time() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    stop_sidecar(proc)
    assert proc.returncode == 0 and time.monotonic() - started < 2  # not after the 30 s sleep
    assert len(lines(tmp_path / "system.jsonl")) == 1


def test_interval_zero_disables_it(tmp_path):
    assert start_sidecar(tmp_path, os.getpid(), 0) is None
    stop_sidecar(None)


def test_sampling_errors_are_skipped_not_fatal(tmp_path, monkeypatch, capsys):
    """In-process: a sample that raises is skipped (noted on stderr); the next ones are written."""
    from voltx.telemetry.sampler import Sampler

    real = Sampler.sample
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("psutil hiccup")
        return real(self)

    monkeypatch.setattr(Sampler, "sample", flaky)
    watched = subprocess.Popen(["sleep", "0.6"])
    code = sidecar.run(tmp_path, watched.pid, 0.1, nvml=fake_nvml.make(lost_power=True))
    watched.wait()
    recs = lines(tmp_path / "system.jsonl")
    assert code == 0 and calls["n"] >= 4 and len(recs) == calls["n"] - 1
    assert all(r["gpu_error"] == "GPU is lost" and r["gpus"][0]["power_w"] is None for r in recs)
    assert "psutil hiccup" in capsys.readouterr().err


def test_restart_after_a_killed_sidecar_starts_on_a_new_line(tmp_path):
    (tmp_path / "system.jsonl").write_text('{"time": 1.0}\n{"time": 2', encoding="utf-8")
    watched = subprocess.Popen(["sleep", "0.3"])
    sidecar.run(tmp_path, watched.pid, 0.1, nvml=fake_nvml.make())
    text = (tmp_path / "system.jsonl").read_text().splitlines()
    assert text[:2] == ['{"time": 1.0}', '{"time": 2'] and json.loads(text[2])["gpus"]


@pytest.fixture
def toy_env(tmp_path):
    site = fake_plugin_dist(tmp_path / "site", "voltx-toy", "voltx_toy_phase", TOY.read_text(), entry_name="toy")
    return {**os.environ, **plugin_env(site), "VOLTX_RUNS_DIR": str(tmp_path / "runs")}


def _sidecars_of(run_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "voltx.telemetry.sidecar" in cmd and str(run_dir) in cmd:
            found.append(p)
    return found


def test_a_real_run_records_system_jsonl_and_stops_its_sidecar(toy_env, tmp_path):
    done = subprocess.run([sys.executable, "-m", "voltx", "run", "toy", "--progress", "plain", "sleep=0.1", "epochs=1"],
                          env=toy_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    recs = lines(run_dir / "system.jsonl")
    assert recs, (run_dir / "telemetry.log").read_text()
    assert recs[0]["proc"]["pid"] == load_manifest(run_dir).record.pid  # it watched the run process
    assert recs[0]["gpus"] == [] and recs[0]["gpu_error"]  # no driver here: said so, not crashed
    assert not _sidecars_of(run_dir)


def test_telemetry_interval_zero_runs_without_a_sidecar(toy_env, tmp_path):
    done = subprocess.run([sys.executable, "-m", "voltx", "run", "toy", "--progress", "plain", "epochs=1", "run.telemetry_interval=0"],
                          env=toy_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    assert not (run_dir / "system.jsonl").exists()


def test_telemetry_modules_do_not_import_torch_or_textual():
    code = (
        "import sys, voltx.telemetry, voltx.telemetry.sampler, voltx.telemetry.sidecar, voltx.runs.launch, voltx.runs.export\n"
        "voltx.telemetry.Sampler('.').sample()\n"
        "bad = {'torch', 'textual'} & set(sys.modules)\n"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
