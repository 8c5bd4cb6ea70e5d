"""Helpers of the Agent Forge tests: tiny cognate runs, in-process through voltx's runner.

A module of its own name (not conftest): ``import conftest`` would name whichever conftest.py
pytest imported last when voltx's own tests run in the same session."""

from __future__ import annotations

import pytest

from voltx.testing import only_run, run_phase

# Three one-block models on 96 generated problems each, fine-tuned from a shared base trained on
# their union: 3 optimizer steps per stage, 12 in all.
GEN = "gen:arith_words_gen?max_number=9&ops="
TINY = {"data": [f"{GEN}add,sub:1.0"], "eval_data": f"{GEN}add,sub", "base_epochs": 1, "finetune_lr": 1e-3,
        "specialist_data": [[f"{GEN}add:1.0"], [f"{GEN}sub:1.0"], [f"{GEN}add:0.5", f"{GEN}sub:0.5"]],
        "examples": 96, "eval_examples": 16, "d_model": 16, "heads": 2, "layers": 1, "max_len": 80, "refine_steps": [3, 2, 1],
        "memory_slots": [4, 4, 4], "epochs": 1, "batch_size": 32, "warmup": 2, "lr": 3e-3, "speed_batches": 1}


def run_cognate(runs_dir, plugins=None, resume=None, **overrides) -> int:
    return run_phase("cognate", runs_dir, {**TINY, **overrides}, plugins=plugins, resume=resume)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One uninterrupted tiny run: its run directory."""
    runs = tmp_path_factory.mktemp("cognate-runs")
    assert run_cognate(runs) == 0
    return only_run(runs, "cognate")
