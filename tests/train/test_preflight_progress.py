"""Preflight refusals (disk, memory) and the two progress displays."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest

from voltx.errors import EXIT_PREFLIGHT, PreflightError
from voltx.plugins import load_plugins
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.train.preflight import check_resources
from voltx.train.progress import Reporter
from voltx.train.runner import RunRequest, execute


def toy_plugins():
    spec = importlib.util.spec_from_file_location("voltx_test_toy", Path(__file__).with_name("toy_phase.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["voltx_test_toy"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return load_plugins(extra=[("toy", module)], refresh=True)


def test_low_disk_is_refused_with_one_paragraph(tmp_path, monkeypatch):
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=10 * 1024**2))
    code = execute(RunRequest(phase="toy", runs_dir=str(tmp_path / "runs"), progress="plain"), plugins=toy_plugins(), restore_signals=True)
    assert code == EXIT_PREFLIGHT
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    manifest = load_manifest(run_dir).raw
    assert manifest["status"] == "failed" and "not enough disk" in manifest["message"]
    assert "--runs-dir" in manifest["message"] and "\n" not in manifest["message"]
    assert not (run_dir / "checkpoints").exists()


def test_memory_floor(tmp_path, monkeypatch):
    import psutil

    class VM:
        available = 1024**2

    monkeypatch.setattr(psutil, "virtual_memory", lambda: VM())
    with pytest.raises(PreflightError, match="not enough memory on host RAM"):
        check_resources(tmp_path, 10_000_000, 2, device=type("D", (), {"type": "cpu"})())


def test_plain_progress_without_tty(tmp_path):
    stream = io.StringIO()
    copied = []
    rep = Reporter(stream=stream, mode="auto", copy=copied.append)
    rep.start("encoder", 10)
    rep.line("[Epoch 1/1] Step 1/10 | Loss: 1.000")
    rep.update(1)
    rep.stop()
    assert not rep.rich
    assert stream.getvalue() == "[Epoch 1/1] Step 1/10 | Loss: 1.000\n"  # no ANSI, one plain line
    assert copied == ["[Epoch 1/1] Step 1/10 | Loss: 1.000"]


def test_rich_progress_on_a_tty():
    class TTY(io.StringIO):
        def isatty(self):
            return True

    stream = TTY()
    rep = Reporter(stream=stream, mode="auto")
    assert rep.rich
    rep.start("encoder", 10)
    rep.update(5, "loss 1.0")
    rep.line("hello from rich")
    rep.stop()
    assert "hello from rich" in stream.getvalue()


def test_the_rich_bar_shows_the_loops_eta_else_its_own_estimate():
    """The shared loop hands the bar the ETA ``voltx status`` and the console show (the wall-clock pace,
    evaluations included); rich's own estimate, from the bar's recent updates, would be a third figure."""
    class TTY(io.StringIO):
        def isatty(self):
            return True

    rep = Reporter(stream=TTY(), mode="auto")
    rep.start("encoder", 100)
    column, task = rep._progress.columns[3], rep._progress.tasks[0]
    rep.update(5, "loss 1.0", eta_s=125.0)
    assert column.render(task).plain == "2m05s"
    rep.update(6, "loss 1.0")  # a phase with a loop of its own: rich's estimate
    assert column.render(task).plain != "2m05s"
    rep.stop()


def test_toy_run_in_process_logs_every_step(tmp_path):
    code = execute(RunRequest(phase="toy", overrides=("run.log_every=1",), runs_dir=str(tmp_path / "runs"), progress="plain"), plugins=toy_plugins(), restore_signals=True)
    assert code == 0
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    steps = [json.loads(l)["step"] for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 25))  # 64 rows / batch 8 x 3 epochs
    assert "[run]" in (run_dir / "config.toml").read_text() and (run_dir / "overrides.txt").read_text() == "run.log_every=1\n"
