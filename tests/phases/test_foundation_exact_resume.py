"""Exact resume of F2 and F3 (the translator's test in tests/train/test_exact_resume.py, on tiny
configs): a run SIGKILLed mid-training and resumed ends with the same parameters, optimizer state
and per-step logged losses as an uninterrupted run started beside it. F2's run also checks the
language-stack pin: a resume after another stack was published where ``lang_from = "auto"``
looks is refused, naming both."""

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

from test_f2 import TINY as F2_TINY, data, easy_triples, fake_f1_stack
from test_f3 import TINY as F3_TINY
from voltx.engine.tokenizer import save_tokenizer, train_bpe
from voltx.errors import EXIT_DATA, EXIT_OK
from voltx.runs.checkpoints import newest_intact
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.runs.store import RunReader

pytestmark = pytest.mark.slow


def start(cmd: list[str], runs: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, "VOLTX_RUNS_DIR": str(runs)})


def kill_at_step(proc: subprocess.Popen, runs: Path, step: int, stage: str | None = None) -> Path:
    """SIGKILL ``proc`` (the one run under ``runs``) once it logged ``step`` (past its first
    checkpoint): the run's global step, or with ``stage`` that stage's own step."""
    deadline = time.time() + 240
    while time.time() < deadline:
        dirs = list_run_dirs(runs) if runs.exists() else []
        if dirs and (dirs[0] / "metrics.jsonl").exists():
            lines = [l for l in (dirs[0] / "metrics.jsonl").read_text().splitlines() if l.endswith("}")]
            last = json.loads(lines[-1]) if lines else {}
            if last and (last["step"] if stage is None else last["stage_step"] * (last["stage"] == stage)) >= step:
                proc.send_signal(signal.SIGKILL)
                proc.communicate()
                assert load_manifest(dirs[0]).record.status == "running"  # killed: no end record
                return dirs[0]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("never reached the step")


def finished(proc: subprocess.Popen, runs: Path) -> Path:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_OK, err[-3000:]
    (run_dir,) = list_run_dirs(runs)
    return run_dir


def resume(phase: str, run_dir: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voltx", "run", phase, "--resume", str(run_dir), "--progress", "plain"],
                          capture_output=True, text=True, cwd=cwd, timeout=300, env={**os.environ, "VOLTX_RUNS_DIR": str(run_dir.parents[1])})


def assert_bitwise_equal(reference: Path, resumed: Path, artifacts: tuple[str, ...]) -> None:
    for name in artifacts:
        a, b = load_file(str(reference / "artifacts" / name)), load_file(str(resumed / "artifacts" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    ca, cb = newest_intact(reference / "checkpoints")[0], newest_intact(resumed / "checkpoints")[0]
    assert ca.step == cb.step
    ma, mb = ca.tensors("model"), cb.tensors("model")
    assert ma.keys() == mb.keys() and all(torch.equal(ma[k], mb[k]) for k in ma)
    ea, eb = ca.tensors("extra"), cb.tensors("extra")
    optim = [k for k in ea if k.startswith("optim/")]
    assert optim and ea.keys() == eb.keys() and all(torch.equal(ea[k], eb[k]) for k in ea)
    assert ca.state["optimizer"] == cb.state["optimizer"]
    losses = []
    for run_dir in (reference, resumed):
        reader = RunReader(run_dir)
        reader.refresh()
        losses.append([(m.step, m.stage, m.losses) for m in reader.metrics])
    assert [s for s, _, _ in losses[0]] == list(range(1, len(losses[0]) + 1))  # every step logged once
    assert losses[1] == losses[0]


def test_f2_sigkilled_and_resumed_is_bitwise_identical_and_refuses_another_stack(tmp_path, cli_in_process):
    triples = easy_triples()
    kb = tmp_path / "kb.jsonl"
    kb.write_text("".join(json.dumps(t) + "\n" for t in triples), encoding="utf-8")
    published = tmp_path / "checkpoints"  # where f1 publishes: lang_from = "auto" finds it
    fake_f1_stack(published, triples)
    cmd = [sys.executable, "-m", "voltx", "run", "f2", data(kb), *F2_TINY, "lang_from=auto", f"paths.checkpoints_dir={json.dumps(str(published))}",
           "epochs=2", "run.checkpoint_every=3", "--progress", "plain"]  # 8 steps
    reference = start(cmd, tmp_path / "ref", tmp_path)
    run_dir = kill_at_step(start(cmd, tmp_path / "killed", tmp_path), tmp_path / "killed", 5)
    reference = finished(reference, tmp_path / "ref")

    original = (published / "lang_tokenizer.json").read_bytes()
    save_tokenizer(train_bpe([t["head"] + " again" for t in triples] * 2, vocab_size=300), published / "lang_tokenizer.json")
    refused = cli_in_process("run", "f2", "--resume", str(run_dir), cwd=tmp_path,  # "an f1 run published in between"
                             env={"VOLTX_RUNS_DIR": str(tmp_path / "killed")})  # refused before any training: no process of its own
    assert refused.returncode == EXIT_DATA and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert f"this run started from {published.resolve()} (tokenizer sha256 " in refused.stderr
    assert f"f2.lang_from = 'auto' now gives {published.resolve()} (tokenizer sha256 " in refused.stderr
    assert len(set(part.split(")")[0] for part in refused.stderr.split("sha256 ")[1:])) == 2  # the two hashes differ

    (published / "lang_tokenizer.json").write_bytes(original)
    done = resume("f2", run_dir, tmp_path)
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    assert "[knowledge] resumed at step" in done.stderr
    assert_bitwise_equal(reference, run_dir, ("lang_encoder.safetensors", "relations.safetensors", "concept_codebook.safetensors"))


def test_f3_sigkilled_and_resumed_is_bitwise_identical(tmp_path):
    cmd = [sys.executable, "-m", "voltx", "run", "f3", *F3_TINY, "eval_max_examples=8", "run.checkpoint_every=3",
           "--progress", "plain"]  # 1 epoch, 11 steps
    reference = start(cmd, tmp_path / "ref", tmp_path)
    # In the reasoning stage (after the renderer's): what F3 adds to the kit is resumed there.
    run_dir = kill_at_step(start(cmd, tmp_path / "killed", tmp_path), tmp_path / "killed", 4, stage="reasoning")
    reference = finished(reference, tmp_path / "ref")
    done = resume("f3", run_dir, tmp_path)
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    assert "[reasoning] resumed at step" in done.stderr
    assert_bitwise_equal(reference, run_dir, ("vfn_foundation.safetensors", "lang_encoder.safetensors", "lang_decoder.safetensors"))
