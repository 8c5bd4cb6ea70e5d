"""Exact resume: a translator run SIGKILLed at an arbitrary step and resumed ends with the
same parameters, optimizer state and per-step logged losses as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_TRANSLATOR
from voltx.runs.checkpoints import newest_intact
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.runs.store import RunReader

pytestmark = pytest.mark.slow


def command(data: Path) -> list[str]:
    return [sys.executable, "-m", "voltx", "run", "translator", "--progress", "plain",
            f"data={json.dumps(str(data))}", *TINY_TRANSLATOR, "run.checkpoint_every=3"]


@pytest.fixture
def reference(stdlib_pairs_jsonl, tmp_path) -> Path:
    """The uninterrupted run the killed and resumed one is compared with."""
    runs = tmp_path / "ref"
    done = subprocess.run(command(stdlib_pairs_jsonl), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "VOLTX_RUNS_DIR": str(runs)})
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list_run_dirs(runs)
    return run_dir


def kill_at_step(cmd: list[str], runs: Path, step: int) -> Path:
    """Start ``cmd`` (a new run, or a resume of the one run under ``runs``) and SIGKILL it once it logged ``step``."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "VOLTX_RUNS_DIR": str(runs)})
    deadline = time.time() + 240
    while time.time() < deadline:
        dirs = list_run_dirs(runs)
        if dirs and (dirs[0] / "metrics.jsonl").exists():
            lines = [l for l in (dirs[0] / "metrics.jsonl").read_text().splitlines() if l.endswith("}")]
            if lines and json.loads(lines[-1])["step"] >= step:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                return dirs[0]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("never reached the step")


def logged_losses(run_dir: Path) -> list[tuple[int, str, dict]]:
    reader = RunReader(run_dir)
    reader.refresh()
    return [(m.step, m.stage, m.losses) for m in reader.metrics]


def test_sigkill_during_each_stage_then_resume_is_bitwise_identical(tmp_path, stdlib_pairs_jsonl, reference):
    """Killed during the encoder stage, resumed, killed again during the decoder stage, resumed to
    the end: one run resumes into each stage (a killed run per stage trained the encoder twice)."""
    cmd = command(stdlib_pairs_jsonl)

    runs = tmp_path / "killed"
    run_dir = kill_at_step(cmd, runs, 4)  # during the encoder
    assert load_manifest(run_dir).record.status == "running"  # killed: no end record
    resume = [*cmd[:5], "--resume", str(run_dir), "--progress", "plain"]
    assert kill_at_step(resume, runs, 15) == run_dir  # during the decoder
    assert load_manifest(run_dir).record.status == "running" and len(load_manifest(run_dir).raw["attempts"]) == 2
    resumed = subprocess.run(resume, capture_output=True, text=True, timeout=300, env={**os.environ, "VOLTX_RUNS_DIR": str(runs)})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    manifest = load_manifest(run_dir).raw
    assert manifest["status"] == "finished" and len(manifest["attempts"]) == 3

    for name in ("code_encoder.safetensors", "code_decoder.safetensors"):
        a = load_file(str(reference / "artifacts" / name))
        b = load_file(str(run_dir / "artifacts" / name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name

    ca, cb = newest_intact(reference / "checkpoints")[0], newest_intact(run_dir / "checkpoints")[0]
    assert ca.step == cb.step
    ea, eb = ca.tensors("extra"), cb.tensors("extra")
    optim_keys = [k for k in ea if k.startswith("optim/")]
    assert optim_keys and all(torch.equal(ea[k], eb[k]) for k in optim_keys)
    assert ca.state["optimizer"]["param_groups"] == cb.state["optimizer"]["param_groups"]

    ref_losses, res_losses = logged_losses(reference), logged_losses(run_dir)
    assert [s for s, _, _ in ref_losses] == list(range(1, len(ref_losses) + 1))  # every step logged once
    assert res_losses == ref_losses
