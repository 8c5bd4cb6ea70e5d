"""Helpers of the trio tests: tiny runs of the trio phase, in-process through voltx's runner.

A module of its own name (not conftest): ``import conftest`` would name whichever conftest.py
pytest imported last when voltx's own tests run in the same session."""

from __future__ import annotations

import pytest

from voltx.testing import only_run, run_phase

# A few steps of the tiny model: 16 records, 2 optimizer steps (4 x accumulation 2) per epoch.
TINY = {"base_model": "tiny", "examples": 16, "eval_examples": 8, "epochs": 2, "batch_size": 4, "grad_accum": 2,
        "lr": 3e-3, "warmup": 1, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "max_len": 160, "max_new_tokens": 4}


def run_trio(runs_dir, plugins=None, resume=None, **overrides) -> int:
    return run_phase("trio", runs_dir, {**TINY, **overrides}, plugins=plugins, resume=resume)


_FINISHED: dict[str, object] = {}
"""The one finished run of the session: each test module that imports the fixture gets a fixture
of its own, so the run is kept here, not in pytest's session cache."""


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One uninterrupted tiny run of the creative role: its run directory."""
    if "run" not in _FINISHED:
        runs = tmp_path_factory.mktemp("trio-runs")
        assert run_trio(runs) == 0
        _FINISHED["run"] = only_run(runs, "trio")
    return _FINISHED["run"]
