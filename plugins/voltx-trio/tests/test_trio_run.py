"""The trio phase end to end on the tiny model: a run, its adapter, exact resume, `voltx trio ask` (bad input: test_trio_bad_input.py)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal

import pytest
from safetensors.torch import load_file

from voltx import hookimpl
from voltx.errors import EXIT_PREEMPTED
from voltx.plugins import load_plugins

from trio_support import finished_run, run_trio  # noqa: F401 (finished_run: a fixture)
from voltx.testing import StopAtStep, only_run

pytestmark = pytest.mark.slow


def test_a_run_saves_its_adapter_as_safetensors_and_measures_against_its_baselines(finished_run):
    adapter = finished_run / "artifacts" / "trio-creative"
    weights = load_file(adapter / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights)
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    assert not list(finished_run.rglob("*.bin")) and not list(finished_run.rglob("*.pt"))  # never pickle
    published = finished_run.parents[1] / "published" / "trio-creative"  # [paths].checkpoints_dir: where trio ask looks
    assert (published / "adapter_model.safetensors").read_bytes() == (adapter / "adapter_model.safetensors").read_bytes()
    events = [json.loads(line) for line in (finished_run / "events.jsonl").read_text().splitlines()]
    (last,) = [e for e in events if e.get("kind") == "evaluation"][-1:]
    for key in ("exact_match", "majority_baseline", "base_exact_match", "heldout_loss", "unigram_loss", "base_heldout_loss",
                "format_adherence", "constant_format_adherence", "base_format_adherence"):
        assert f"trio/{key}" in last["metrics"]
    assert len([e for e in events if e.get("kind") == "deliverable"]) == 3


def test_sigterm_exits_75_and_resume_ends_bitwise_equal_to_the_uninterrupted_run(tmp_path, finished_run):
    runs = tmp_path / "runs"
    plugins = load_plugins(extra=[("stop-at-2", StopAtStep(2))], refresh=True)
    assert run_trio(runs, plugins=plugins) == EXIT_PREEMPTED
    assert run_trio(runs, resume="auto") == 0
    resumed = only_run(runs, "trio") / "artifacts" / "trio-creative" / "adapter_model.safetensors"
    straight = load_file(finished_run / "artifacts" / "trio-creative" / "adapter_model.safetensors")
    assert {k: v.tolist() for k, v in load_file(resumed).items()} == {k: v.tolist() for k, v in straight.items()}


def test_trio_ask_runs_the_three_adapters_in_turn(tmp_path, finished_run, capsys):
    paths = {}
    for role in ("creative", "logical", "dialectical"):  # one tiny adapter stands in for each role
        paths[role] = tmp_path / role
        shutil.copytree(finished_run / "artifacts" / "trio-creative", paths[role])
        meta = json.loads((paths[role] / "trio.json").read_text())
        (paths[role] / "trio.json").write_text(json.dumps({**meta, "role": role}))
    from voltx_trio.ask_cli import configure, handle

    parser = argparse.ArgumentParser(prog="voltx trio")
    configure(parser)  # the parser `voltx trio` gets (CommandSpec.configure)
    code = handle(parser.parse_args(["ask", "P→Q,P?Q", "--max-new-tokens", "3", *[a for r, p in paths.items() for a in (f"--{r}", str(p))]]))
    out = capsys.readouterr().out
    assert code == 0
    assert out.index("== thesis (creative) ==") < out.index("== antithesis (logical) ==") < out.index("== synthesis (dialectical) ==")
