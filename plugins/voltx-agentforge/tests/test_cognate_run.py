"""`voltx run cognate` end to end on tiny models: three artifacts Phase 2 can load, the verdicts,
sizing, exact resume across stages, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from voltx.errors import VoltxError, EXIT_CONFIG, EXIT_DATA, EXIT_NO_INPUT, EXIT_PREEMPTED, EXIT_PREFLIGHT
from voltx.plugins import load_plugins

from agentforge_support import finished_run, run_cognate  # noqa: F401 (finished_run: a fixture)
from voltx.testing import StopAtStep, only_run, run_events as events
from voltx_agentforge.cognate_artifacts import load_model

pytestmark = pytest.mark.slow
SPECS = ("reasoning", "memory", "speed")


def test_a_run_leaves_three_loadable_models_and_judges_them_against_baselines(finished_run):
    art = finished_run / "artifacts"
    configs = {}
    for spec in SPECS:
        model, configs[spec] = load_model(art / f"cognate-{spec}")
        assert configs[spec]["specialisation"] == spec and configs[spec]["parameters"] == sum(p.numel() for p in model.parameters())
    assert [configs[s]["args"]["refine_steps"] for s in SPECS] == [3, 2, 1]  # made different by config
    assert [configs[s]["training"]["tasks"] for s in SPECS] == [["add"], ["sub"], ["add", "sub"]]  # each its own mix
    base, base_config = load_model(art / "cognate-base")  # the shared base they were fine-tuned from
    assert base_config["training"]["epochs"] == 1 and "cognate-base" in {e.get("stage") for e in events(finished_run)}
    assert not list(finished_run.rglob("*.bin")) and not list(finished_run.rglob("*.pt"))  # never pickle
    summary = json.loads((art / "cognate.json").read_text())
    assert set(summary["models"]) == set(SPECS) and 0.0 <= summary["metrics"]["diversity"] <= 1.0
    published = finished_run.parents[1] / "published" / "cognate-speed" / "model.safetensors"
    assert published.read_bytes() == (art / "cognate-speed" / "model.safetensors").read_bytes()
    evs = events(finished_run)
    (sizing,) = [e for e in evs if e["kind"] == "sizing"]
    assert sizing["category"] == "tiny" and sizing["batch_size"] == 32  # the user's batch, kept and logged
    verdicts = {e["metric"]: e for e in evs if e["kind"] == "deliverable"}
    assert set(verdicts) == {f"cognate-{s}/accuracy" for s in SPECS} | {"cognate/diversity"}
    acc = verdicts["cognate-memory/accuracy"]
    assert set(acc["baselines"]) == {"cognate-memory/majority_answer", "cognate-memory/copy_number"}
    assert all(v is not None for v in (*acc["baselines"].values(), *acc["ablations"].values()))
    assert verdicts["cognate/diversity"]["baselines"]["cognate/diversity_untrained"] is not None


def test_sigterm_in_the_second_stage_then_resume_ends_bitwise_equal(tmp_path, finished_run):
    runs = tmp_path / "runs"
    assert run_cognate(runs, plugins=load_plugins(extra=[("stop-at-5", StopAtStep(5))], refresh=True)) == EXIT_PREEMPTED
    assert not (only_run(runs, "cognate") / "artifacts" / "cognate-memory").exists()
    assert run_cognate(runs, resume="auto") == 0
    for spec in SPECS:
        a = load_model(only_run(runs, "cognate") / "artifacts" / f"cognate-{spec}")[0].state_dict()
        b = load_model(finished_run / "artifacts" / f"cognate-{spec}")[0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), spec


def drift(art, spec: str) -> float:
    """L2 distance of a specialist's weights from the base's (its fresh memory gate left out)."""
    base, model = (load_model(art / f"cognate-{s}")[0].state_dict() for s in ("base", spec))
    return sum(float(((model[k] - base[k]) ** 2).sum()) for k in base if ".gate." not in k) ** 0.5


def test_the_anchor_keeps_each_fine_tune_near_the_base(tmp_path, finished_run):
    runs = tmp_path / "runs"
    assert run_cognate(runs, finetune_anchor=10.0) == 0
    art, free = only_run(runs, "cognate") / "artifacts", finished_run / "artifacts"
    base = load_model(art / "cognate-base")[0].state_dict()
    assert all(torch.equal(v, load_model(free / "cognate-base")[0].state_dict()[k]) for k, v in base.items())  # one base
    for spec in SPECS:
        assert drift(art, spec) < 0.5 * drift(free, spec), spec
        assert load_model(art / f"cognate-{spec}")[1]["training"]["finetune_anchor"] == 10.0


def test_replay_and_the_fine_tune_optimizer_reach_the_specialists_who_are_still_judged_on_their_own_kinds(tmp_path):
    runs = tmp_path / "runs"
    assert run_cognate(runs, finetune_replay=0.5, finetune_optimizer="adamw") == 0
    art = only_run(runs, "cognate") / "artifacts"
    assert load_model(art / "cognate-base")[1]["training"]["optimizer"] == "muon_grokfast"  # the base: cognate.optimizer
    for spec, tasks in zip(SPECS, (["add"], ["sub"], ["add", "sub"])):
        training = load_model(art / f"cognate-{spec}")[1]["training"]
        assert training["optimizer"] == "adamw" and training["finetune_replay"] == 0.5
        assert training["tasks"] == tasks  # its own kinds, not the rehearsed base's


LOOKUP = {"memory_ngram": 3, "memory_slots": [64, 64, 64], "memory_lr_mult": [1.0, 10.0, 1.0], "memory_cost": [0.5, 0.0, 0.5],
          "finetune_optimizer": "adamw"}


def test_the_lookup_memory_its_learning_rate_and_price_reach_the_models_and_resume_exactly(tmp_path):
    runs = tmp_path / "runs"
    assert run_cognate(runs, **LOOKUP) == 0
    art = only_run(runs, "cognate") / "artifacts"
    for spec in ("base", *SPECS):  # phase 2 rebuilds each from its config: the lookup comes with it
        model, config = load_model(art / f"cognate-{spec}")
        assert config["args"]["memory_ngram"] == 3 and model.memory.query is None and model.memory.slots.shape == (64, 16)
    metrics = json.loads((art / "cognate.json").read_text())["metrics"]
    assert all(0.0 <= metrics[f"{s}_memory_use"] <= 1.0 for s in SPECS)
    banner = (only_run(runs, "cognate") / "stdout.log").read_text()
    assert "3-gram lookup, lr x10, cost 0)" in banner and "3-gram lookup, lr x1, cost 0.5)" in banner
    stopped = tmp_path / "stopped"  # stopped in the memory model's stage: its memory's lr multiple is in the checkpoint
    assert run_cognate(stopped, plugins=load_plugins(extra=[("stop-at-8", StopAtStep(8))], refresh=True), **LOOKUP) == EXIT_PREEMPTED
    assert (only_run(stopped, "cognate") / "artifacts" / "cognate-reasoning").exists()
    assert not (only_run(stopped, "cognate") / "artifacts" / "cognate-memory").exists()
    assert run_cognate(stopped, resume="auto", **LOOKUP) == 0
    for spec in SPECS:
        a = load_model(only_run(stopped, "cognate") / "artifacts" / f"cognate-{spec}")[0].state_dict()
        b = load_model(art / f"cognate-{spec}")[0].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), spec


@pytest.mark.parametrize("override, code, message", [
    ({"data": ["gen:arith_words_gen:0.5"]}, EXIT_CONFIG, "cognate.data: the mix weights must sum to 1"),
    ({"refine_steps": [2, 1]}, EXIT_CONFIG, "cognate.refine_steps: expected 3 values (reasoning, memory, speed)"),
    ({"specialist_data": [["gen:arith_words_gen:1.0"], ["gen:arith_words_gen:0.5"], ["gen:arith_words_gen:1.0"]]}, EXIT_CONFIG,
     "cognate.specialist_data[1]: the mix weights must sum to 1"),
    ({"memory_slots": [4, 8, 4]}, EXIT_CONFIG, "cognate.memory_slots: the three models are fine-tuned from one base"),
    ({"finetune_lr": -1.0}, EXIT_CONFIG, "cognate.finetune_lr must be at least 0, got -1.0"),
    ({"finetune_anchor": -1.0}, EXIT_CONFIG, "cognate.finetune_anchor must be at least 0, got -1.0"),
    ({"finetune_replay": 1.0}, EXIT_CONFIG, "cognate.finetune_replay must be in [0, 1)"),
    ({"finetune_replay": 0.3, "base_epochs": 0}, EXIT_CONFIG, "cognate.finetune_replay (0.3) rehearses the shared base's mix"),
    ({"data": ["missing.jsonl:1.0"]}, EXIT_NO_INPUT, "missing.jsonl: no such file"),
    ({"eval_data": "gen:arith_words_gen?ops=div"}, EXIT_CONFIG, "ops must be a comma-separated subset of add,sub,mul,two,box,inc,fact"),
    ({"eval_data": "gen:arith_words_gen?facts=0"}, EXIT_CONFIG, "facts must be an integer from 1 to 400"),
    ({"memory_ngram": 7}, EXIT_CONFIG, "cognate.memory_ngram must be 0 (attention read) or 1-6"),
    ({"memory_cost": [0.1, -0.1, 0.1]}, EXIT_CONFIG, "cognate.memory_cost: each price must be >= 0"),
    ({"memory_lr_mult": [1.0, 0.0, 1.0]}, EXIT_CONFIG, "cognate.memory_lr_mult: each multiple must be > 0"),
    ({"batch_size": 10**9}, EXIT_PREFLIGHT, "not enough memory for a batch of 1000000000"),
])
def test_bad_input_is_refused_before_anything_is_trained(tmp_path, capsys, override, code, message):
    try:  # a bad config is refused before the run starts (the CLI turns the error into its exit code)
        got, err = run_cognate(tmp_path / "runs", **override), capsys.readouterr().err
    except VoltxError as exc:
        got, err = exc.exit_code, str(exc)
    assert got == code and message in err and "Traceback" not in err
    runs = list((tmp_path / "runs").glob("cognate/*/checkpoints/step-*"))
    assert not runs and not list((tmp_path / "runs").glob("cognate/*/artifacts/cognate-*"))
    if code == EXIT_PREFLIGHT:  # the pre-flight comes before the data is built (or streamed)
        assert not list((tmp_path / "runs").glob("cognate/*/data/*"))


def test_a_record_without_an_answer_names_its_file_line_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    good = {"input": "Ann has 2 pens. How many pens?", "output": "2", "steps": [], "task": "add"}
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "output": 7}) + "\n")
    assert run_cognate(tmp_path / "runs", data=[f"{bad}:1.0"]) == EXIT_DATA
    err = capsys.readouterr().err
    assert f"{bad}:2" in err and "output" in err
