"""Helpers of the Agent Forge tests: tiny cognate runs, in-process through voltx's runner.

A module of its own name (not conftest): ``import conftest`` would name whichever conftest.py
pytest imported last when voltx's own tests run in the same session."""

from __future__ import annotations

import json

import pytest

# Three one-block models on 96 generated problems each, fine-tuned from a shared base trained on
# their union: 3 optimizer steps per stage, 12 in all.
GEN = "gen:arith_words_gen?max_number=9&ops="
TINY = {"data": [f"{GEN}add,sub:1.0"], "eval_data": f"{GEN}add,sub", "base_epochs": 1, "finetune_lr": 1e-3,
        "specialist_data": [[f"{GEN}add:1.0"], [f"{GEN}sub:1.0"], [f"{GEN}add:0.5", f"{GEN}sub:0.5"]],
        "examples": 96, "eval_examples": 16, "d_model": 16, "heads": 2, "layers": 1, "max_len": 80, "refine_steps": [3, 2, 1],
        "memory_slots": [4, 4, 4], "epochs": 1, "batch_size": 32, "warmup": 2, "lr": 3e-3, "speed_batches": 1}


def run_cognate(runs_dir, plugins=None, resume=None, **overrides) -> int:
    from voltx.plugins import load_plugins
    from voltx.train.runner import RunRequest, execute

    publish = str(runs_dir / "published")  # a run without a preset publishes its models: never into the checkout
    req = RunRequest(phase="cognate", runs_dir=str(runs_dir), overrides={**TINY, "run.log_every": 1, "paths.checkpoints_dir": publish,
                                                                         **overrides}, resume=resume, progress="plain")
    return execute(req, plugins=plugins or load_plugins(refresh=True), restore_signals=True)


def fake_plugin_dist(site, dist: str, module: str, source: str):
    """A plugin distribution as pip would leave it (a module and dist-info with a ``voltx`` entry
    point): ``site`` on sys.path and PYTHONPATH loads it here and in child ``voltx run`` processes."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[voltx]\n{module} = {module}\n", encoding="utf-8")
    return site


def only_run(runs):
    (run_json,) = runs.glob("cognate/*/run.json")
    return run_json.parent


def events(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One uninterrupted tiny run: its run directory."""
    runs = tmp_path_factory.mktemp("cognate-runs")
    assert run_cognate(runs) == 0
    return only_run(runs)
