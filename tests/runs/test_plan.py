"""The run planner's rules (voltx.runs.plan): runs root, resume target, overrides, and the
child argv every launcher builds, which ``voltx run`` itself must plan the same way."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from voltx.config import override_item, override_items, parse_override, toml_value
from voltx.errors import UsageError
from voltx.plugins import load_plugins
from voltx.runs import launch
from voltx.runs.plan import RunPlan, plan_run


def stored_run(root: Path, phase: str, status: str, *, preset=None, overrides=()) -> Path:
    run_dir = root / phase / f"20240101-00000{len(list((root / phase).glob('*'))) if (root / phase).exists() else 0}-abcdef"
    run_dir.mkdir(parents=True)
    manifest = {"id": run_dir.name, "phase": phase, "status": status, "preset": preset, "overrides": list(overrides),
                "argv": ["voltx", "run", phase], "pid": os.getpid(), "host": socket.gethostname(), "created_at": time.time()}
    (run_dir / "run.json").write_text(json.dumps(manifest))
    return run_dir


def planned_by_voltx_run(argv: list[str], monkeypatch) -> RunPlan:
    """The plan ``voltx run`` makes of a child's argv: parsed by the real CLI, planned as the runner plans."""
    from voltx.cli.main import main
    from voltx.train import runner

    assert argv[:3] == [sys.executable, "-m", "voltx"]
    asked = []
    monkeypatch.setattr(runner, "execute", lambda req: asked.append(req) or 0)
    assert main(argv[3:]) == 0
    return asked[0].plan(load_plugins())


# --- runs root ---------------------------------------------------------------------------


def test_runs_root_precedence_is_flag_then_environment_then_override_then_config_then_runs(tmp_path, monkeypatch):
    config = tmp_path / "my.toml"
    config.write_text('[paths]\nruns_dir = "from-config"\n')
    monkeypatch.setenv("VOLTX_RUNS_DIR", "from-env")
    over = ["paths.runs_dir=from-override"]
    assert plan_run("f1", runs_dir="from-flag", config=config, overrides=over).root == Path("from-flag")
    assert plan_run("f1", config=config, overrides=over).root == Path("from-env")
    monkeypatch.delenv("VOLTX_RUNS_DIR")
    assert plan_run("f1", config=config, overrides=over).root == Path("from-override")
    assert plan_run("f1", config=config, overrides={"paths.runs_dir": "typed"}).root == Path("typed")
    assert plan_run("f1", config=config).root == Path("from-config")
    (tmp_path / "training_config.toml").write_text('[paths]\nruns_dir = "from-cwd-config"\n')  # cwd is tmp_path
    assert plan_run("f1").root == Path("from-cwd-config")
    (tmp_path / "training_config.toml").unlink()
    assert plan_run("f1").root == Path("runs")  # the shipped curriculum keeps the default


# --- resume ------------------------------------------------------------------------------


def test_resume_auto_takes_the_newest_resumable_run_and_names_only_it_in_the_argv(tmp_path):
    stored_run(tmp_path, "translator", "finished")
    run_dir = stored_run(tmp_path, "translator", "preempted", preset="quick", overrides=["encoder.lr=0.1"])
    plan = plan_run("translator", plugins=load_plugins(), runs_dir=tmp_path, resume="auto", preset="quick", overrides=["encoder.lr=1e-1"])
    assert plan.resume_dir == run_dir and plan.run_dir == run_dir
    assert plan == RunPlan("translator", tmp_path, resume_dir=run_dir)  # the run's own settings, not the command's
    assert plan.command() == ["run", "translator", "--runs-dir", str(tmp_path), "--resume", str(run_dir)]


def test_nothing_to_resume_plans_a_new_run_and_says_so(tmp_path, capsys):
    stored_run(tmp_path, "translator", "finished")
    plan = plan_run("translator", plugins=load_plugins(), runs_dir=tmp_path, resume="auto", preset="quick")
    assert plan.resume_dir is None and plan.preset == "quick"
    assert "nothing to resume for phase 'translator'" in capsys.readouterr().err


def test_resume_refusals(tmp_path):
    finished = stored_run(tmp_path, "translator", "finished")
    with pytest.raises(UsageError, match="already finished"):
        plan_run("translator", runs_dir=tmp_path, resume=str(finished))
    with pytest.raises(UsageError, match="is a 'translator' run, not 'f1'"):
        plan_run("f1", runs_dir=tmp_path, resume=str(finished))
    preempted = stored_run(tmp_path, "translator", "preempted", preset="quick")
    with pytest.raises(UsageError, match="preset: the run has quick, this command full"):
        plan_run("translator", plugins=load_plugins(), runs_dir=tmp_path, resume=str(preempted), preset="full")
    with pytest.raises(UsageError, match="--run-id names a new run"):
        plan_run("translator", runs_dir=tmp_path, resume="auto", run_id="20240101-000000-abcdef")
    with pytest.raises(UsageError):
        plan_run("translator", run_id="../../etc")


def test_an_alias_or_unknown_phase_is_resolved_only_against_a_plugin_set(tmp_path):
    with pytest.raises(UsageError, match="nosuchphase"):
        plan_run("nosuchphase", plugins=load_plugins(), runs_dir=tmp_path)
    assert plan_run("nosuchphase", runs_dir=tmp_path).phase == "nosuchphase"  # a launcher's child loads its own plugins


# --- overrides: one TOML writer ------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "cpu", 'a "quoted" \\ path', "tab\there", "line\nbreak\x01\x7f", "é ünïcode", 3, -2, 0.1, 3e-4, 1e30,
    True, False, [], ["a", "b"], [1, 2.5], [["nested"]],
])
def test_a_structured_override_reads_back_as_the_same_value(value):
    assert parse_override(override_item("k.sub", value)) == ("k.sub", value)
    assert "\n" not in toml_value(value)  # overrides.txt holds one per line


def test_strings_pass_through_and_a_mapping_is_written_once():
    assert override_items(["encoder.lr=3e-4", "device=cpu"]) == ("encoder.lr=3e-4", "device=cpu")
    assert override_items({"corpus": ["a.py"], "k": 8, "hardware.device": "cpu"}) == ('corpus=["a.py"]', "k=8", 'hardware.device="cpu"')


def test_the_argv_refuses_options_disguised_as_overrides(tmp_path):
    for bad in ("--resume=auto", "epochs"):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            plan_run("f1", runs_dir=tmp_path, overrides=[bad]).child_argv()


# --- the child argv is what `voltx run` would do --------------------------------------------


@pytest.mark.parametrize("progress", [None, "plain"])
def test_voltx_run_plans_a_child_argv_back_into_the_same_plan(tmp_path, monkeypatch, progress):
    config = tmp_path / "c.toml"
    config.write_text("")
    plan = plan_run("f1", plugins=load_plugins(), config=config, preset="quick", runs_dir=tmp_path / "runs",
                    overrides={"hardware.device": "cpu", "run.seed": 7, "paths.data_dir": 'd "x"'}, run_id="20240101-000000-abcdef")
    assert planned_by_voltx_run(plan.child_argv(progress=progress), monkeypatch) == plan
    resumable = stored_run(tmp_path / "runs", "f1", "preempted")
    again = plan_run("f1", runs_dir=tmp_path / "runs", resume=str(resumable))
    assert planned_by_voltx_run(again.child_argv(progress=progress), monkeypatch) == again


def started(monkeypatch) -> list[list[str]]:
    """Catch what the launcher would start instead of starting it."""
    cmds = []

    def fake_start(cmd, *, run_id, phase, run_dir, root, use_tmux, cwd):
        cmds.append(cmd)
        return launch.Launched(run_id, phase, run_dir, 1, "voltx-" + run_id, None, cmd)

    monkeypatch.setattr(launch, "_start", fake_start)
    return cmds


def test_tmux_starts_the_plan_voltx_run_makes_of_the_same_command(tmp_path, monkeypatch, capsys):
    from voltx.cli.main import main

    cmds = started(monkeypatch)
    monkeypatch.setattr(launch, "tmux_available", lambda: True)
    words = ["f1", "--preset", "quick", "hardware.device=cpu", "--runs-dir", "r"]
    assert main(["run", *words, "--tmux"]) == 0
    child = planned_by_voltx_run(cmds[0], monkeypatch)
    direct = plan_run("f1", plugins=load_plugins(), preset="quick", overrides=["hardware.device=cpu"], runs_dir="r", run_id=child.run_id)
    assert child == RunPlan(**{**vars(direct), "root": direct.root.absolute()})
    assert f"started in tmux session voltx-{child.run_id}" in capsys.readouterr().out


def test_the_console_launch_and_resume_start_what_voltx_run_would(tmp_path, monkeypatch):
    cmds = started(monkeypatch)
    launched = launch.launch_run("f1", runs_dir=tmp_path, preset="quick", overrides=("run.seed=3",), config_path=None)
    child = planned_by_voltx_run(cmds[0], monkeypatch)
    assert child == plan_run("f1", plugins=load_plugins(), runs_dir=tmp_path, preset="quick", overrides=["run.seed=3"], run_id=launched.run_id)
    assert child.run_dir == launched.run_dir
    run_dir = stored_run(tmp_path, "f1", "preempted")
    launch.resume_run(run_dir)
    assert planned_by_voltx_run(cmds[1], monkeypatch) == plan_run("f1", runs_dir=tmp_path, resume=str(run_dir))
