"""The curriculum's deliverable gate reads a child run's verdicts through the run store's record
type: a damaged verdict is never taken for a pass."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from voltx.runs.store import RunWriter
from voltx.runs.linked import child_verdicts
from voltx.runs.chain import history as _history


def test_a_verdict_that_is_not_true_or_false_does_not_pass_the_gate(tmp_path):
    w = RunWriter.create(tmp_path / "runs", "f1", config_toml="", overrides=[], preset=None, argv=["voltx", "run", "f1"])
    w.event("deliverable", step=40, metric="encoder/role_acc", op=">=", threshold=0.85, value=0.9, passed=True, description="seed")
    w.close("finished", 0)
    with open(w.paths.events, "a") as fh:  # a foreign writer, then a crash mid-line
        fh.write(json.dumps({"time": 1.0, "kind": "deliverable", "metric": "decoder/bleu", "op": ">=", "threshold": 0.3,
                             "value": 0.1, "passed": "maybe"}) + "\n")
        fh.write(json.dumps({"time": 1.0, "kind": "deliverable", "metric": "decoder/exact", "op": ">=", "threshold": "0.3",
                             "value": 0.1, "passed": False}) + "\n")
        fh.write('{"time": 1.0, "kind": "deliverable", "metric": "x", "passed": tr')
    verdicts = child_verdicts(w.dir)
    assert len(verdicts) == 1  # the original counted "maybe" as passed (truthy) and crashed formatting "0.3"
    assert (verdicts[0].metric, verdicts[0].passed, verdicts[0].threshold) == ("encoder/role_acc", True, 0.85)


# --- the curriculum's own records (curriculum_start / curriculum_phase), read on resume ----------------


def curriculum_run(tmp_path, child_dir):
    """A curriculum run as `voltx run curriculum` leaves it after f1 finished and f2 was stopped."""
    w = RunWriter.create(tmp_path / "runs", "curriculum", config_toml="", overrides=[], preset=None, argv=["voltx", "run", "curriculum"])
    w.event("start", phase="curriculum", preset=None, overrides=[])
    w.event("curriculum_start", config="/work/training_config.toml", phases=["f1", "f2"])
    w.event("curriculum_phase", phase="f1", status="started", run_dir=str(child_dir), step=0, resumed=False,
            argv=["-m", "voltx", "run", "f1", "--runs-dir", str(tmp_path / "runs")])
    w.event("curriculum_phase", phase="f1", status="finished", run_dir=str(child_dir), step=0, passed=2, total=2, missed=[])
    return w


def test_a_damaged_curriculum_record_is_skipped_and_counted_not_a_crash(tmp_path):
    child = tmp_path / "runs" / "f1" / "20240101-000000-aaaaaa"
    w = curriculum_run(tmp_path, child)
    w.close("preempted", 75)
    with open(w.paths.events, "a") as fh:  # a foreign writer, and a crash mid-line
        fh.write(json.dumps({"time": 2.0, "kind": "curriculum_phase", "status": "finished", "run_dir": str(child), "step": 1}) + "\n")
        fh.write(json.dumps({"time": 2.0, "kind": "curriculum_phase", "phase": ["f2"], "status": "started", "run_dir": "x", "step": 1}) + "\n")
        fh.write(json.dumps({"time": 2.0, "kind": "curriculum_phase", "phase": "f1", "status": "started", "run_dir": 7, "step": 1}) + "\n")
        fh.write('{"time": 2.0, "kind": "curriculum_phase", "phase": "f2", "sta\n')
    history = _history(w.dir)  # the original raised KeyError: 'phase' (then TypeError: unhashable list)
    assert list(history.phases) == ["f1"]  # the damaged line did not turn f1 back into "started"
    f1 = history.phases["f1"]
    assert (f1.status, f1.run_dir, f1.passed, f1.total, f1.missed) == ("finished", str(child), 2, 2, [])
    assert history.started_with == "/work/training_config.toml"
    assert history.skipped.count == 4
    assert [str(p) for p in history.skipped.first] == [
        "line 6: field 'phase' is missing",
        "line 7: field 'phase' expected a string, got a list",
        "line 8: field 'run_dir' expected a string, got 7",
        "line 9: not valid JSON (Unterminated string starting at column 58)",
    ]


def test_a_resumed_curriculum_whose_start_record_is_damaged_refuses_to_guess_its_config(tmp_path):
    from voltx.errors import DataError
    from voltx_phases.curriculum import CurriculumConfig
    from voltx_phases.curriculum_train import run

    w = RunWriter.create(tmp_path / "runs", "curriculum", config_toml="", overrides=[], preset=None, argv=["voltx", "run", "curriculum"])
    w.event("start", phase="curriculum", preset=None, overrides=[])
    w.flush()  # another voltx's line (this writer refuses it): not a path, the original ran the phases with --config 5
    with w.paths.events.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"kind": "curriculum_start", "config": 5, "phases": ["f1"]}) + "\n")
    said: list[str] = []
    ctx = SimpleNamespace(settings=CurriculumConfig(phases=["f1"]), run=w, say=said.append, config=SimpleNamespace(source=None),
                          job=None, launch=())
    try:
        w.flush()
        with pytest.raises(DataError, match="no readable curriculum_start record .*line 2: field 'config' expected a string, got 5"):
            run(ctx)
    finally:
        w.close("failed", 65)
    assert said == ["[curriculum] skipped 1 malformed line in events.jsonl (first: line 2: field 'config' expected a string, got 5); those records are ignored"]
