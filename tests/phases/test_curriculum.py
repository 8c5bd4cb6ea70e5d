"""`voltx run curriculum`: linked runs, artifact hand-over, gates, stop and resume.

Two small phases installed as a real plugin distribution stand in for F1/F2 so the
orchestration is tested in seconds: "ca" publishes a language stack file, "cb" has a
``lang_from`` setting (as F2/F3 do) and writes down what it was given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from voltx.testing import fake_plugin_dist, plugin_env, run_events as events
from voltx.errors import EXIT_CONFIG, EXIT_GATE, EXIT_OK, EXIT_PREEMPTED
from voltx.runs.layout import list_run_dirs, load_manifest

pytestmark = pytest.mark.slow

PLUGIN = '''
from dataclasses import dataclass
from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec


@dataclass
class CaConfig:
    target: float = 100.0


@dataclass
class CbConfig:
    lang_from: str = "auto"
    epochs: int = 2
    sleep: float = 0.0


def run_ca(ctx):
    import torch
    ctx.save_artifact("lang_encoder.safetensors", {"w": torch.ones(2)})
    ctx.record_evaluation("ca", 0, 1, {"score": 1.0 if ctx.settings.target > 1 else 500.0, "constant": 200.0})


def run_cb(ctx):
    import time
    import torch
    from voltx.train.batches import EpochBatches
    from voltx.train.loop import Stage, fit
    cfg = ctx.settings
    ctx.run.event("given", lang_from=cfg.lang_from)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    def step(idx):
        if cfg.sleep:
            time.sleep(cfg.sleep)
        return {"loss": model(x[idx]).pow(2).mean()}
    batches = EpochBatches(list(range(32)), 4, 0, lambda i: torch.tensor(i))
    fit(ctx, Stage("cb", model, opt, batches, cfg.epochs, step, lambda s: 0.01))
    ctx.record_evaluation("cb", 0, 1, {"score": 1.0, "constant": 0.0})


@hookimpl
def register_phases(register):
    register(PhaseSpec("ca", "stack maker", run_ca, CaConfig, deliverables=(Deliverable("ca/score", "<", 100.0, baselines=("ca/constant",)),)))
    register(PhaseSpec("cb", "stack user", run_cb, CbConfig, deliverables=(Deliverable("cb/score", ">", 0.5, baselines=("cb/constant",)),)))
'''


@pytest.fixture
def env(tmp_path):
    site = fake_plugin_dist(tmp_path / "site", "voltx-cur-test", "voltx_cur_test", PLUGIN, entry_name="curtest")
    return {**os.environ, **plugin_env(site), "VOLTX_RUNS_DIR": str(tmp_path / "runs")}


def voltx(env, *args, timeout=400):  # a limit for a hung process, not a speed check (loaded machines are slow)
    return subprocess.run([sys.executable, "-m", "voltx", *args], capture_output=True, text=True, env=env, timeout=timeout)


def only(root: Path, phase: str) -> Path:
    (run,) = [r for r in list_run_dirs(root) if r.parent.name == phase]
    return run


def test_phases_run_as_linked_runs_each_from_the_previous_artifacts(env, tmp_path):
    done = voltx(env, "run", "curriculum", 'phases=["ca", "cb"]', "run.telemetry_interval=0")
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    root = tmp_path / "runs"
    cur, ca, cb = only(root, "curriculum"), only(root, "ca"), only(root, "cb")
    assert all(load_manifest(r).record.status == "finished" for r in (cur, ca, cb))
    given = [e for e in events(cb) if e["kind"] == "given"]
    assert given[0]["lang_from"] == str(ca)  # cb started from ca's run
    # The curriculum plans each phase as `voltx run` would (voltx.runs.plan) and the phase ran exactly that command.
    started = next(e for e in events(cur) if e["kind"] == "curriculum_phase" and e["phase"] == "cb" and e["status"] == "started")
    assert started["argv"] == load_manifest(cb).raw["argv"]
    assert started["argv"][:7] == ["voltx", "run", "cb", "--runs-dir", str(root), "--run-id", cb.name]
    assert "--progress" in started["argv"] and f'lang_from="{ca}"' in load_manifest(cb).raw["overrides"]
    steps = [(e["phase"], e["status"], e["run_dir"]) for e in events(cur) if e["kind"] == "curriculum_phase"]
    assert steps == [("ca", "started", str(ca)), ("ca", "finished", str(ca)), ("cb", "started", str(cb)), ("cb", "finished", str(cb))]
    evaluated = {k for e in events(cur) if e["kind"] == "evaluation" for k in e["metrics"]}
    assert evaluated == {"curriculum/ca/ca/score", "curriculum/cb/cb/score"}
    assert "[ca]" in done.stderr and "[cb]" in done.stderr  # each phase's output, prefixed


def test_a_missed_deliverable_stops_and_a_resume_skips_a_damaged_record(env, tmp_path):
    """One stopped curriculum for both: the gate stops it; then a foreign line in its record is
    skipped (and said) by the resume, which carries on past the finished phase."""
    config = failing_config(tmp_path)
    stopped = voltx(env, "run", "curriculum", 'phases=["ca", "cb"]', "run.telemetry_interval=0", "--config", str(config))
    assert stopped.returncode == EXIT_GATE, stopped.stderr[-2000:]
    assert "phase ca missed 1 deliverable(s): ca/score" in stopped.stderr and 'curriculum.gate = "warn"' in stopped.stderr
    root = tmp_path / "runs"
    assert not (root / "cb").exists()  # the next phase never started

    cur, ca = only(root, "curriculum"), only(root, "ca")
    with open(cur / "events.jsonl", "a") as fh:  # a foreign writer: a curriculum_phase record without its phase
        fh.write(f'{{"time": 1.0, "kind": "curriculum_phase", "status": "started", "run_dir": "{ca}", "step": 0}}\n')
    lines = (cur / "events.jsonl").read_text().count("\n")
    resumed = voltx(env, "run", "curriculum", "--resume", str(cur), "--config", str(config))
    assert resumed.returncode == EXIT_OK, resumed.stderr[-2000:]  # the original: KeyError: 'phase', a traceback
    assert "Traceback" not in resumed.stderr
    assert f"skipped 1 malformed line in events.jsonl (first: line {lines}: field 'phase' is missing)" in resumed.stderr
    assert "ca: already finished" in resumed.stderr and load_manifest(only(root, "cb")).record.status == "finished"


def test_gate_warn_records_an_alert_and_continues(env, tmp_path):
    warned = voltx(env, "run", "curriculum", 'phases=["ca", "cb"]', 'gate="warn"', "run.telemetry_interval=0",
                   "--config", str(failing_config(tmp_path)))
    assert warned.returncode == EXIT_OK, warned.stderr[-2000:]
    cur = only(tmp_path / "runs", "curriculum")
    alerts = [e for e in events(cur) if e["kind"] == "alert"]
    assert alerts and alerts[0]["rule"] == "deliverable-gate" and alerts[0]["severity"] == "warning"
    assert load_manifest(only(tmp_path / "runs", "cb")).record.status == "finished"


def failing_config(tmp_path: Path) -> Path:
    path = tmp_path / "fail.toml"
    path.write_text("[ca]\ntarget = 0.5\n", encoding="utf-8")  # ca/score becomes 500: fails "< 100"
    return path


def test_stop_is_forwarded_and_resume_carries_on(env, tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text("[cb]\nsleep = 0.2\nepochs = 4\n", encoding="utf-8")  # 32 steps, ~6 s: the stop lands mid-phase
    proc = subprocess.Popen([sys.executable, "-m", "voltx", "run", "curriculum", 'phases=["ca", "cb"]', "run.telemetry_interval=0",
                             "--config", str(config)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = tmp_path / "runs"
    deadline = time.time() + 240
    while time.time() < deadline:
        cb = [r for r in list_run_dirs(root) if r.parent.name == "cb"] if root.exists() else []
        if cb and (cb[0] / "metrics.jsonl").exists() and (cb[0] / "metrics.jsonl").read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("cb never started logging")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_PREEMPTED, err[-2000:]
    cur, cb = only(root, "curriculum"), only(root, "cb")
    assert load_manifest(cur).record.status == "preempted" and load_manifest(cb).record.status == "preempted"

    resumed = voltx(env, "run", "curriculum", "--resume", str(cur), "--config", str(config))
    assert resumed.returncode == EXIT_OK, resumed.stderr[-2000:]
    assert only(root, "cb") == cb and load_manifest(cb).record.status == "finished"  # the same cb run, resumed
    assert "ca: already finished" in resumed.stderr
    assert [e["kind"] for e in events(cb)].count("resumed") == 1


def test_bad_phase_list_is_a_config_error(cli_in_process):
    done = cli_in_process("run", "curriculum", 'phases=["f1", "nope"]', "run.telemetry_interval=0")
    assert done.returncode == EXIT_CONFIG
    assert "no phase 'nope'" in done.stderr and "Traceback" not in done.stderr
