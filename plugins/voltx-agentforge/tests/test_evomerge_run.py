"""`voltx run evomerge` end to end on tiny models: one step per generation with what the console
charts, the champion as a Cognate model, the verdicts, exact resume, bad input."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from voltx import hookimpl
from voltx.errors import EXIT_CONFIG, EXIT_DATA, EXIT_NO_INPUT, EXIT_PREEMPTED, VoltxError
from voltx.plugins import load_plugins

from evomerge_support import cognate_models, evolved, run_evomerge, write_models  # noqa: F401 (fixtures)
from voltx.testing import StopAtStep, only_run, run_events as events
from voltx_agentforge.cognate_artifacts import load_model

pytestmark = pytest.mark.slow


def test_each_generation_is_a_step_and_the_champion_is_a_cognate_model(evolved):
    steps = [json.loads(line) for line in (evolved / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3]
    assert all({"best_fitness", "mean_fitness", "diversity"} <= set(s) for s in steps)
    assert all(s["best_fitness"] >= s["mean_fitness"] for s in steps)
    model, config = load_model(evolved / "artifacts" / "evomerge-champion")  # phase 3 reads it like a Cognate model
    assert config["specialisation"] == "evomerge" and len(config["evomerge"]["techniques"]) == 3
    summary = json.loads((evolved / "artifacts" / "evomerge.json").read_text())
    assert len(summary["history"]) == 3 and len(summary["combos_used"]) == 8
    metrics = summary["metrics"]  # report accuracy per kind (add, sub): which skills each model has
    for who in ("champion", "input1", "input2", "input3"):
        kinds = [metrics[f"{who}_report_{kind}"] for kind in ("add", "sub")]
        assert all(0 <= k <= 1 for k in kinds) and sum(kinds) / 2 == pytest.approx(metrics[f"{who}_report" if who != "champion" else "champion_report"])
    verdicts = {e["metric"]: e for e in events(evolved) if e["kind"] == "deliverable"}
    assert set(verdicts) == {"evomerge/improvement", "evomerge/diversity_min", "evomerge/combos_used"}
    assert verdicts["evomerge/combos_used"]["value"] == 8
    assert all(v is not None for v in verdicts["evomerge/improvement"]["baselines"].values())
    assert not list(evolved.rglob("*.pt")) and not list(evolved.rglob("*.bin"))


def test_sigterm_then_resume_ends_bitwise_equal(tmp_path, evolved, cognate_models):
    runs = tmp_path / "runs"
    assert run_evomerge(runs, cognate_models, plugins=load_plugins(extra=[("stop-at-2", StopAtStep(2))], refresh=True)) == EXIT_PREEMPTED
    assert not (only_run(runs, "evomerge") / "artifacts" / "evomerge-champion").exists()
    assert run_evomerge(runs, cognate_models, resume="auto") == 0
    a = load_model(only_run(runs, "evomerge") / "artifacts" / "evomerge-champion")[0].state_dict()
    b = load_model(evolved / "artifacts" / "evomerge-champion")[0].state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ours, theirs = (json.loads((r / "artifacts" / "evomerge.json").read_text()) for r in (only_run(runs, "evomerge"), evolved))
    assert ours["history"] == theirs["history"] and ours["champion"] == theirs["champion"]


def refusal(runs, cognate_dir, capsys, **override) -> tuple[int, str]:
    try:  # the phase's check refuses before the run starts (the CLI turns the error into its exit code)
        return run_evomerge(runs, cognate_dir, **override), capsys.readouterr().err
    except VoltxError as exc:
        return exc.exit_code, str(exc)


@pytest.mark.parametrize("override, code, message", [
    ({"population": 4}, EXIT_CONFIG, "evomerge.population must be at least 8"),
    ({"generations": 0}, EXIT_CONFIG, "evomerge.generations must be at least 1"),
    ({"elites": 8}, EXIT_CONFIG, "elites (8) must be 1 to population - 1"),
    ({"fitness": "loss"}, EXIT_CONFIG, "evomerge.fitness must be one of accuracy, probability, got 'loss'"),
    ({"fitness_data": "missing.jsonl"}, EXIT_NO_INPUT, "missing.jsonl: no such file"),
])
def test_unworkable_settings_are_refused_before_anything_is_written(tmp_path, capsys, cognate_models, override, code, message):
    got, err = refusal(tmp_path / "runs", cognate_models, capsys, **override)
    assert got == code and message in err and "Traceback" not in err
    assert not (tmp_path / "runs" / "evomerge").exists()


def test_fitness_accuracy_ranks_by_the_fitness_sets_exact_match(tmp_path, cognate_models):
    assert run_evomerge(tmp_path / "runs", cognate_models, fitness="accuracy") == 0
    summary = json.loads((only_run(tmp_path / "runs", "evomerge") / "artifacts" / "evomerge.json").read_text())
    metrics = summary["metrics"]
    assert metrics["champion_fitness"] == metrics["champion_accuracy"]
    assert all(h["best_fitness"] == h["best_accuracy"] for h in summary["history"])
    assert max(metrics[f"input{i}_fitness"] for i in (1, 2, 3)) == metrics["best_input_fitness"] <= 1.0


def test_phase_2_without_phase_1_models_names_the_command(tmp_path, capsys):
    got, err = refusal(tmp_path / "runs", tmp_path / "nothing", capsys)
    assert got == EXIT_NO_INPUT and "voltx run cognate" in err and "cognate-reasoning" in err
    assert not (tmp_path / "runs" / "evomerge").exists()


def test_models_of_unequal_shapes_are_refused_naming_the_tensors(tmp_path, capsys):
    models = write_models(tmp_path / "models", slots=(4, 8, 4), layers=1)
    got, err = refusal(tmp_path / "runs", models, capsys)
    assert got == EXIT_DATA and "memory.slots (cognate-reasoning [4, 16], cognate-memory [8, 16]" in err
    assert not (tmp_path / "runs" / "evomerge").exists()


def test_an_empty_fitness_set_is_refused(tmp_path, capsys, cognate_models):
    empty = tmp_path / "held.jsonl"
    empty.write_text("\n")
    got, err = refusal(tmp_path / "runs", cognate_models, capsys, fitness_data=str(empty))
    assert got == EXIT_DATA and "holds 0 records" in err
    assert not (tmp_path / "runs" / "evomerge").exists()
