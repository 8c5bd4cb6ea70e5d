"""voltx.runs.linked (public API): a parent run records its child runs and reads them back on resume;
a child's evaluations and verdicts are read through the run store's record types; a chain hands
its children the distributed options it was started with."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from voltx.config import HardwareConfig, PathsConfig, RunConfig
from voltx.errors import UsageError
from voltx.runs import chain as chain_module
from voltx.runs.chain import Chain, run_chain
from voltx.runs.linked import child_evaluations, parent_overrides, record_child, recorded_children, run_child
from voltx.runs.store import RunWriter


def writer(root, phase):
    return RunWriter.create(root, phase, config_toml="", overrides=[], preset=None, argv=["voltx", "run", phase])


def test_a_resumed_parent_reads_the_latest_record_per_child_and_skips_damaged_lines(tmp_path):
    parent = writer(tmp_path / "runs", "lvm-sweep")
    ctx = SimpleNamespace(run=parent, global_step=0)
    record_child(ctx, "lstm", "started", tmp_path / "a")
    record_child(ctx, "lstm", "finished", tmp_path / "a")
    record_child(ctx, "gru", "started", tmp_path / "b")
    record_child(ctx, "gru", "preempted", tmp_path / "b")
    parent.flush()
    with open(parent.paths.events, "a") as fh:  # a foreign writer's record with a wrong type, then a torn line
        fh.write(json.dumps({"time": 1.0, "kind": "linked_run", "label": "gru", "status": 3, "run_dir": "x"}) + "\n")
        fh.write('{"time": 1.0, "kind": "linked_run", "label": "mam')
    done, skipped = recorded_children(ctx)
    assert {k: (v.status, v.run_dir) for k, v in done.items()} == {"lstm": ("finished", str(tmp_path / "a")),
                                                                   "gru": ("preempted", str(tmp_path / "b"))}
    assert skipped.count == 1  # the wrong type; the torn last line of a live run is left unread


def test_child_evaluations_keep_the_latest_value_of_each_metric(tmp_path):
    child = writer(tmp_path / "runs", "lvm")
    child.event("evaluation", stage="lvm", step=1, metrics={"lvm/cosine": 0.1, "lvm/mse": 0.5})
    child.event("evaluation", stage="lvm", step=2, metrics={"lvm/cosine": 0.3, "lvm/dev_cosine": None})
    child.close("finished", 0)
    assert child_evaluations(child.dir) == {"lvm/cosine": 0.3, "lvm/mse": 0.5}


def test_children_run_on_the_parents_footing():
    ctx = SimpleNamespace(config=SimpleNamespace(paths=PathsConfig(runs_dir="r"), hardware=HardwareConfig(device="cpu"),
                                                 run=RunConfig(seed=7)))
    got = parent_overrides(ctx)
    assert got["paths.runs_dir"] == "r" and got["hardware.device"] == "cpu" and got["run.seed"] == 7


TWO = ("--nproc-per-node", "2")


def chain_parent(tmp_path, said: list, job=None):
    return SimpleNamespace(run=writer(tmp_path / "runs", "curriculum"), job=job, launch=TWO, global_step=0, say=said.append,
                           config=SimpleNamespace(paths=PathsConfig(), hardware=HardwareConfig(device="cpu"), run=RunConfig(seed=7), source=""),
                           stop=SimpleNamespace(requested=False), hub=SimpleNamespace(log=lambda record: None),
                           record_evaluation=lambda *args: None)


def test_a_chain_gives_each_phase_the_options_it_was_launched_with(tmp_path, monkeypatch):
    started: list[list[str]] = []
    monkeypatch.setattr(chain_module, "run_child", lambda ctx, label, argv: started.append(argv) or 0)  # no process
    ctx = chain_parent(tmp_path, [])
    run_chain(ctx, Chain("curriculum", ["f1", "f2"], gate="continue"))
    assert [argv[4] for argv in started] == ["f1", "f2"]
    for argv in started:
        assert argv[argv.index("--nproc-per-node") + 1] == "2" and "hardware.device=\"cpu\"" in " ".join(argv)
    ctx.run.flush()
    events = [json.loads(line) for line in ctx.run.paths.events.read_text().splitlines()]
    recorded = [e["argv"] for e in events if e["kind"] == "curriculum_phase" and e["status"] == "started"]
    assert len(recorded) == 2 and all(TWO[0] in argv for argv in recorded)  # the parent's events say how each phase ran


def test_a_chain_started_as_several_processes_refuses(tmp_path):
    with pytest.raises(UsageError, match="starts_runs=True"):
        run_chain(chain_parent(tmp_path, [], job=SimpleNamespace(rank=0, world=2)), Chain("curriculum", ["f1"]))


def test_a_childs_lines_carry_one_prefix_naming_the_child():
    said: list[str] = []
    printed = ["voltx: run runs/cognate/x (new)", "[cognate] sizing: tiny", "[cognate-reasoning] [Epoch 1/4] Step 1/125 | Loss: 8.6",
               "[run] step 125/1500 (8%)", "[Epoch 1/10] Step 1/700 | Loss: 4.2", "[lstm/lvm] a chain's child", ""]
    code = run_child(SimpleNamespace(say=said.append, stop=SimpleNamespace(requested=False)), "cognate",
                     [sys.executable, "-c", f"print('\\n'.join({printed!r}))"])
    assert code == 0 and said == ["[cognate] voltx: run runs/cognate/x (new)", "[cognate] sizing: tiny",
                                  "[cognate-reasoning] [Epoch 1/4] Step 1/125 | Loss: 8.6", "[cognate/run] step 125/1500 (8%)",
                                  "[cognate] [Epoch 1/10] Step 1/700 | Loss: 4.2", "[cognate/lstm/lvm] a chain's child", "[cognate]"]
