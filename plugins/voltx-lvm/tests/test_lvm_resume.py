"""Exact resume of ``voltx run lvm``, like the built-in phases: SIGTERM -> checkpoint, exit 75 ->
``--resume auto`` ends bitwise equal to an uninterrupted run on CPU.

In this process, through the runner ``voltx run`` calls (a subprocess per run would spend most
of the test importing torch): the SIGTERM is a real one, sent to this process by a watcher thread
once the run has logged step 3; the run's own handlers take it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import torch
from lvm_support import TINY, rotating_articles, run_dirs, isolated  # noqa: F401 (autouse)
from safetensors.torch import load_file

from voltx.errors import EXIT_OK, EXIT_PREEMPTED
from voltx.plugins import load_plugins
from voltx.train.runner import RunRequest, execute


def logged(run_dir):
    path = run_dir / "metrics.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.endswith("}")] if path.exists() else []
    return [json.loads(line) for line in lines]


def sigterm_at_step(runs, step: int) -> threading.Thread:
    def watch() -> None:
        deadline = time.time() + 240
        while time.time() < deadline:
            dirs = run_dirs(runs)
            if dirs and logged(dirs[0]) and logged(dirs[0])[-1]["step"] >= step:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_sigterm_then_resume_auto_is_bitwise_identical(tmp_path):
    data = rotating_articles(tmp_path / "rot.npz")
    overrides = {**TINY, "batch_size": 8, "data": str(data)}
    plugins = load_plugins(refresh=True)

    def run(runs, resume=None) -> int:
        req = RunRequest(phase="lvm", runs_dir=str(runs), overrides=overrides, resume=resume, progress="plain")
        return execute(req, plugins=plugins, restore_signals=True)

    assert run(tmp_path / "ref") == EXIT_OK
    (reference,) = run_dirs(tmp_path / "ref")

    runs = tmp_path / "stopped"
    watcher = sigterm_at_step(runs, 3)
    assert run(runs) == EXIT_PREEMPTED
    watcher.join()
    (stopped,) = run_dirs(runs)
    assert 3 <= logged(stopped)[-1]["step"] < logged(reference)[-1]["step"]  # stopped mid-run, not at its end

    assert run(runs, resume="auto") == EXIT_OK
    assert run_dirs(runs) == [stopped]  # the same run, resumed
    a = load_file(str(reference / "artifacts" / "lvm_model.safetensors"))
    b = load_file(str(stopped / "artifacts" / "lvm_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [(m["step"], m["losses"]) for m in logged(reference)] == [(m["step"], m["losses"]) for m in logged(stopped)]
