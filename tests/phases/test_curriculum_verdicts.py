"""The curriculum's deliverable gate reads a child run's verdicts through the run store's record
type: a damaged verdict is never taken for a pass."""

from __future__ import annotations

import json

from voltx.runs.store import RunWriter
from voltx_phases.curriculum import _verdicts


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
    verdicts = _verdicts(w.dir)
    assert len(verdicts) == 1  # the original counted "maybe" as passed (truthy) and crashed formatting "0.3"
    assert (verdicts[0].metric, verdicts[0].passed, verdicts[0].threshold) == ("encoder/role_acc", True, 0.85)
