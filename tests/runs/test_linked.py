"""voltx.runs.linked (public API): a parent run records its child runs and reads them back on resume;
a child's evaluations and verdicts are read through the run store's record types."""

from __future__ import annotations

import json
from types import SimpleNamespace

from voltx.config import HardwareConfig, PathsConfig, RunConfig
from voltx.runs.linked import child_evaluations, parent_overrides, record_child, recorded_children
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
