"""Helpers for tests of voltx and of plugin distributions: a plugin installed as pip leaves it,
a phase run in-process, a run's events and evaluated metrics, a SIGTERM at a given step.

Public (``voltx.public_api``): a plugin's tests may import only voltx's public modules, so what
voltx's own tests and every plugin's tests need alike lives here once, not copied into each
test tree. No pytest here: plain functions, usable from a fixture or a script.

    site = fake_plugin_dist(tmp_path / "site", "voltx-hello", "voltx_hello", SOURCE)
    code = run_phase("cognate", tmp_path / "runs", TINY, plugins=load_plugins(extra=[("stop", StopAtStep(5))]))
    run_dir = only_run(tmp_path / "runs", "cognate")
    assert evaluated_metrics(run_dir)["cognate-base/accuracy"] > 0.1
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, Mapping

from voltx import hookimpl


def fake_plugin_dist(site: Path, dist: str, module: str, source: str, entry_name: str | None = None,
                     version: str = "0.1") -> Path:
    """A plugin distribution as pip would leave it: ``module``.py holding ``source`` plus dist-info
    with an entry point in the ``voltx`` group, under ``site``. Put ``site`` on sys.path to load it
    here, or on PYTHONPATH (:func:`plugin_env`) to load it in a child ``voltx`` process."""
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[voltx]\n{entry_name or module} = {module}\n", encoding="utf-8")
    return site


def plugin_env(site: Path) -> dict[str, str]:
    """The environment entry that makes a child process load the plugins installed under ``site``."""
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def run_phase(phase: str, runs_dir: Path, overrides: Mapping[str, Any] | None = None, *, plugins=None,
              resume: str | None = None) -> int:
    """Run ``phase`` in this process under ``runs_dir`` and return its exit code: every step logged,
    plain progress, and the models a run without a preset publishes kept in ``runs_dir/published``
    (never in the checkout's ``[paths].checkpoints_dir``). ``plugins`` defaults to those installed
    (:func:`voltx.plugins.load_plugins`, reloaded); ``resume`` as ``voltx run --resume``."""
    from voltx.plugins import load_plugins
    from voltx.train.runner import RunRequest, execute

    runs_dir = Path(runs_dir)
    req = RunRequest(phase=phase, runs_dir=str(runs_dir), resume=resume, progress="plain",
                     overrides={"run.log_every": 1, "paths.checkpoints_dir": str(runs_dir / "published"), **(overrides or {})})
    return execute(req, plugins=plugins or load_plugins(refresh=True), restore_signals=True)


def only_run(runs_dir: Path, phase: str) -> Path:
    """The one run directory of ``phase`` under ``runs_dir``; an AssertionError lists what is there otherwise."""
    found = sorted(p.parent for p in Path(runs_dir).glob(f"{phase}/*/run.json"))
    assert len(found) == 1, f"expected one {phase} run under {runs_dir}, found {[p.name for p in found]}"
    return found[0]


def run_events(run_dir: Path) -> list[dict]:
    """The events.jsonl records of a run, in order, as written."""
    text = (Path(run_dir) / "events.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def evaluated_metrics(run_dir: Path) -> dict[str, float | None]:
    """Every evaluated metric of a run, the latest value of each (``<stage>/<name>``)."""
    found: dict[str, float | None] = {}
    for e in run_events(run_dir):
        if e["kind"] == "evaluation":
            found.update(e["metrics"])
    return found


class StopAtStep:
    """A plugin that sends this process SIGTERM once ``step`` is logged, as a preemption would: the
    loop checkpoints and the run exits 75 (``load_plugins(extra=[("stop", StopAtStep(5))])``)."""

    def __init__(self, step: int):
        self.step = step

    @hookimpl
    def on_step_logged(self, run, record):
        if record["step"] == self.step:
            os.kill(os.getpid(), signal.SIGTERM)
