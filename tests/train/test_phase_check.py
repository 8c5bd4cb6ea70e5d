"""``PhaseSpec.check``: a phase's own check of its input runs once the config is resolved and
before the run directory exists, so input it refuses leaves no run behind (new or resumed)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from voltx import hookimpl
from voltx.errors import EXIT_DATA, DataError
from voltx.plugin_specs import PhaseSpec
from voltx.plugins import load_plugins
from voltx.runs.layout import list_run_dirs
from voltx.train.runner import RunRequest, execute

CHECKED: list[str] = []


@dataclass
class CheckedConfig:
    data: str = "good"


def check(cfg: CheckedConfig) -> None:
    CHECKED.append(cfg.data)
    if cfg.data != "good":
        raise DataError(f"checked.data: {cfg.data!r} is not good data; give data=\"good\"")


def run(ctx):
    ctx.say(f"ran on {ctx.settings.data}")


@hookimpl
def register_phases(register):
    register(PhaseSpec("checked", "a phase with an input check", run, CheckedConfig, check=f"{__name__}:check"))


def request(tmp_path, **overrides) -> RunRequest:
    return RunRequest(phase="checked", runs_dir=str(tmp_path / "runs"), overrides=overrides, progress="plain")


def test_refused_input_leaves_no_run_and_good_input_runs(tmp_path):
    plugins = load_plugins(extra=[("checked", sys.modules[__name__])], refresh=True)
    CHECKED.clear()
    with pytest.raises(DataError, match="'bad' is not good data") as err:
        execute(request(tmp_path, data="bad"), plugins=plugins, restore_signals=True)
    assert err.value.exit_code == EXIT_DATA and not (tmp_path / "runs").exists()
    assert execute(request(tmp_path), plugins=plugins, restore_signals=True) == 0
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    assert "ran on good" in (run_dir / "stdout.log").read_text()
    assert CHECKED == ["bad", "good"]  # with the settings the run gets (preset and overrides applied)
