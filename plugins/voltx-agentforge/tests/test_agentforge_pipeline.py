"""`voltx run agentforge`: cognate -> evomerge as linked runs, gated, the models handed over.

Phase 2 here is a stand-in, "evo-stand-in" (handed the models as evomerge is: the pipeline's
HANDOFF, patched), installed as a real plugin distribution (the children are `voltx run`
processes): it reads what cognate handed it through the artifact contract and writes down what it
was given. Fast, and independent of the real evomerge (whose quick run takes minutes)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from agentforge_support import TINY
from voltx.errors import EXIT_CONFIG, EXIT_OK, ConfigError
from voltx.plugins import load_plugins
from voltx.testing import fake_plugin_dist, run_events as events
from voltx.train.runner import RunRequest, execute
from voltx_agentforge import pipeline

pytestmark = pytest.mark.slow
EVO = "evo-stand-in"

STAND_IN = '''
from dataclasses import dataclass
from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec


@dataclass
class EvoConfig:
    cognate_dir: str = ""


@dataclass
class NoHandoffConfig:
    generations: int = 1


def run(ctx):
    import json, pathlib
    summary = json.loads((pathlib.Path(ctx.settings.cognate_dir) / "cognate.json").read_text())
    ctx.run.event("given", cognate_dir=ctx.settings.cognate_dir, models=sorted(summary["models"]))
    ctx.record_evaluation("evomerge", 0, 1, {"fitness_gain": 0.3, "best_input": 0.0})


@hookimpl
def register_phases(register):
    register(PhaseSpec("evo-stand-in", "stand-in", run, EvoConfig,
                       deliverables=(Deliverable("evomerge/fitness_gain", ">=", 0.2, baselines=("evomerge/best_input",)),)))
'''


def install(tmp_path, monkeypatch, source: str):
    """The stand-in as an installed distribution (here and in the children), and the pipeline's config file."""
    site = fake_plugin_dist(tmp_path / "site", "voltx-evo-stand-in", "voltx_evo_stand_in", source)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "voltx_evo_stand_in", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(pipeline, "HANDOFF", {EVO: ("cognate_dir", "cognate")})
    config = tmp_path / "agentforge.toml"  # the phases read their tables from the file the pipeline started with
    config.write_text("[cognate]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in {**TINY, "examples": 64}.items()))
    return config


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    return install(tmp_path, monkeypatch, STAND_IN)


def agentforge(tmp_path, config, resume=None, **settings) -> int:
    req = RunRequest(phase="agentforge", config_path=str(config), runs_dir=str(tmp_path / "runs"), resume=resume,
                     overrides={"run.telemetry_interval": 0, "phases": ["cognate", EVO], **settings}, progress="plain")
    return execute(req, plugins=load_plugins(refresh=True), restore_signals=True)


def only(root, phase):
    (run,) = [p.parent for p in root.glob(f"{phase}/*/run.json")]
    return run


def test_cognate_then_evomerge_as_gated_linked_runs_handed_the_models(tmp_path, stand_in, capsys):
    """One pipeline, two child processes (the stop / resume / gate-stop paths are the curriculum's
    engine, tested with it in tests/phases/test_curriculum.py)."""
    # Three optimizer steps cannot answer word problems: cognate misses its accuracy verdicts; gate = warn goes on.
    assert agentforge(tmp_path, stand_in, gate="warn") == EXIT_OK
    root = tmp_path / "runs"
    parent, cognate, evo = only(root, "agentforge"), only(root, "cognate"), only(root, EVO)
    err = capsys.readouterr().err
    assert "[agentforge] warning: phase cognate missed" in err and "[cognate]" in err and f"[{EVO}]" in err
    (alert,) = [e for e in events(parent) if e["kind"] == "alert"]
    assert (alert["rule"], alert["severity"]) == ("deliverable-gate", "warning") and "cognate-reasoning/accuracy" in alert["message"]
    (given,) = [e for e in events(evo) if e["kind"] == "given"]  # phase 2 read phase 1's models through the artifact contract
    assert given["cognate_dir"] == str(cognate / "artifacts") and given["models"] == ["memory", "reasoning", "speed"]
    steps = [(e["phase"], e["status"], e["run_dir"]) for e in events(parent) if e["kind"] == "curriculum_phase"]
    assert steps == [("cognate", "started", str(cognate)), ("cognate", "finished", str(cognate)),
                     (EVO, "started", str(evo)), (EVO, "finished", str(evo))]
    judged = {k for e in events(parent) if e["kind"] == "evaluation" for k in e["metrics"]}
    assert {f"agentforge/{EVO}/evomerge/fitness_gain", "agentforge/cognate/cognate-speed/accuracy"} <= judged


@pytest.mark.parametrize("phases, needle", [
    (["evo-stand-in", "cognate"], "cognate must come before it"),
    (["evo-stand-in"], "cognate must come before it"),
    (["cognate", "nope"], "no phase 'nope'"),
])
def test_a_pipeline_that_cannot_hand_over_is_refused_before_its_run(tmp_path, stand_in, phases, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        agentforge(tmp_path, stand_in, phases=phases)
    assert err.value.exit_code == EXIT_CONFIG and not (tmp_path / "runs").exists()


def test_a_phase_without_the_handoff_setting_is_refused(tmp_path, monkeypatch):
    config = install(tmp_path, monkeypatch, STAND_IN.replace('"stand-in", run, EvoConfig', '"stand-in", run, NoHandoffConfig'))
    with pytest.raises(ConfigError, match="has no setting 'cognate_dir'"):
        agentforge(tmp_path, config)
    assert not (tmp_path / "runs").exists()


def test_the_pipeline_says_it_starts_runs_so_several_processes_run_it_once():
    """``starts_runs`` is what makes ``voltx run agentforge --nproc-per-node N`` run the pipeline once and
    hand the options to each phase (the launcher's side is voltx's own test, tests/train/test_distributed.py)."""
    spec = load_plugins(refresh=True).get("phases", "agentforge")
    assert spec.starts_runs is True
