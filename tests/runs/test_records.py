"""The run store's record types: every damage shape a crash or a foreign writer leaves is a
record or a reason, never a record that says something the line did not."""

from __future__ import annotations

import json

import pytest

from voltx.runs.jsonl import PARTIAL_LINE, LineProblem, RecordError, SkippedLines, decode_line, read_jsonl, stream_jsonl
from voltx.runs.records import Alert, Checkpoint, Deliverable, End, Evaluation, Event, Resumed, parse_event, parse_step

# What the training loop logs (voltx/train/loop.py), measured metrics spread at the top level.
STEP = {"step": 12, "stage": "encoder", "stage_step": 12, "total_steps": 400, "epoch": 1, "batch": 12,
        "losses": {"loss": 2.5, "loss_role": 0.75}, "lr": 0.001, "samples_per_sec": 512.0, "steps_per_sec": 16.0,
        "rar/iterations_mean": 7.5, "time": 1733500000.25, "attempt": 1}
VERDICT = {"time": 1733500100.0, "kind": "deliverable", "step": 400, "metric": "encoder/retrieval_top1", "op": ">=",
           "threshold": 0.5, "value": 0.55, "passed": True, "description": "seed: top-1 >= 50%"}


def reason(parse, obj) -> str:
    with pytest.raises(RecordError) as err:
        parse(obj)
    return str(err.value)


def test_a_logged_step_is_read_with_its_types_and_extra_fields_kept():
    rec = parse_step(STEP)
    assert (rec.step, rec.stage, rec.total_steps, rec.losses, rec.lr, rec.attempt) == (12, "encoder", 400, STEP["losses"], 0.001, 1)
    assert rec.extra == {"rar/iterations_mean": 7.5}  # records are open
    assert rec.to_dict() == STEP  # nothing lost, nothing added


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"step": "abc"}, "field 'step' expected an integer, got 'abc'"),
        ({"step": 2.5}, "field 'step' expected an integer, got 2.5"),
        ({"step": True}, "field 'step' expected an integer, got true"),
        ({"step": None}, "field 'step' expected an integer, got null"),
        ({"step": float("nan")}, "field 'step' expected an integer, got NaN"),
        ({"stage": 3}, "field 'stage' expected a string, got 3"),
        ({"losses": [1.0, 2.0]}, "field 'losses' expected an object of numbers, got a list"),
        ({"losses": {"loss": "low"}}, "field 'losses.loss' expected a number, got 'low'"),
        ({"lr": "fast"}, "field 'lr' expected a number, got 'fast'"),
        ({"samples_per_sec": False}, "field 'samples_per_sec' expected a number, got false"),
        ({"attempt": {"n": 1}}, "field 'attempt' expected an integer, got an object"),
    ],
)
def test_a_step_with_a_wrong_type_is_refused_with_the_field_and_value(change, why):
    assert reason(parse_step, {**STEP, **change}) == why


def test_missing_step_and_non_objects_are_refused():
    assert reason(parse_step, {k: v for k, v in STEP.items() if k != "step"}) == "field 'step' is missing"
    assert reason(parse_step, [1, 2]) == "expected a JSON object, got a list"
    assert reason(parse_step, "step") == "expected a JSON object, got 'step'"


def test_non_finite_numbers_are_null_and_an_integral_float_step_is_an_integer():
    rec = parse_step({**STEP, "step": 13.0, "lr": float("inf"), "losses": {"loss": float("nan"), "loss_role": None},
                      "rar/iterations_mean": float("-inf"), "nested": {"x": float("nan")}})
    assert rec.step == 13 and type(rec.step) is int
    assert rec.lr is None and rec.losses == {"loss": None, "loss_role": None}
    assert rec.extra == {"rar/iterations_mean": None, "nested": {"x": None}}
    assert "lr" not in rec.to_dict()  # a null declared field reads as an absent one


def test_events_are_typed_by_kind():
    d = parse_event(VERDICT)
    assert isinstance(d, Deliverable) and (d.metric, d.passed, d.op, d.threshold, d.value) == ("encoder/retrieval_top1", True, ">=", 0.5, 0.55)
    e = parse_event({"time": 1.0, "kind": "evaluation", "stage": "encoder", "step": 10, "epoch": 1,
                     "metrics": {"encoder/retrieval_top1": 0.42, "decoder/perplexity": None}})
    assert isinstance(e, Evaluation) and e.metrics == {"encoder/retrieval_top1": 0.42, "decoder/perplexity": None}
    a = parse_event({"time": 1.0, "kind": "alert", "rule": "loss-spike", "severity": "warning", "step": None, "message": "[bold]x[/]"})
    assert isinstance(a, Alert) and a.message == "[bold]x[/]" and a.step is None
    assert isinstance(parse_event({"time": 1.0, "kind": "checkpoint", "step": 20, "stage": "encoder", "path": "/x", "seconds": 0.25}), Checkpoint)
    assert isinstance(parse_event({"time": 1.0, "kind": "resumed", "from_step": 20, "attempt": 2}), Resumed)
    assert isinstance(parse_event({"time": 1.0, "kind": "end", "status": "finished", "exit_code": 0, "message": None}), End)
    rar = parse_event({"time": 1.0, "kind": "rar", "step": 5, "gamma": [0.5] * 16})  # a kind without a type of its own
    assert type(rar) is Event and rar.extra == {"gamma": [0.5] * 16}


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({**VERDICT, "passed": "maybe"}, "field 'passed' expected true or false, got 'maybe'"),
        ({**VERDICT, "passed": 1}, "field 'passed' expected true or false, got 1"),
        ({k: v for k, v in VERDICT.items() if k != "passed"}, "field 'passed' is missing"),
        ({**VERDICT, "op": "~="}, "field 'op' expected one of > >= < <=, got '~='"),
        ({**VERDICT, "threshold": "0.5"}, "field 'threshold' expected a number, got '0.5'"),
        ({"time": 1.0, "kind": "alert", "rule": "x", "message": ["a"]}, "field 'message' expected a string, got a list"),
        ({"time": 1.0, "kind": "evaluation", "metrics": {"a": "high"}}, "field 'metrics.a' expected a number, got 'high'"),
        ({"time": 1.0, "kind": "checkpoint", "stage": "encoder"}, "field 'step' is missing"),
        ({"time": 1.0}, "field 'kind' is missing"),
        ({"kind": ["alert"]}, "field 'kind' expected a string, got a list"),
        ({"kind": "start", "time": "noon"}, "field 'time' expected a number, got 'noon'"),
    ],
)
def test_an_event_with_a_wrong_type_is_refused(event, why):
    assert reason(parse_event, event) == why


def test_reader_gives_line_numbers_and_reasons_for_every_damage_shape(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({**STEP, "step": 1}).encode(), b'{"step": "abc", "losses": {}}', b"[1, 2, 3]", b"{not json",
             b'{"step": 9, "stage": "\xff\xfe"}', json.dumps({**STEP, "step": 2, "unknown": {"deep": [1]}}).encode(),
             b'{"step": 3, "losses": {"loss": NaN}, "lr": Infinity}', b"", json.dumps({"losses": {"loss": 1.0}}).encode()]
    path.write_bytes(b"\n".join(lines) + b'\n{"step": 4, "losses": {"lo')  # a crash mid-line
    got = read_jsonl(path, parse=parse_step)
    assert [r.step for r in got.records] == [1, 2, 3]
    assert got.records[1].extra["unknown"] == {"deep": [1]} and got.records[2].losses == {"loss": None}
    assert [str(p) for p in got.problems] == [
        "line 2: field 'step' expected an integer, got 'abc'",
        "line 3: expected a JSON object, got a list",
        "line 4: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        "line 5: not UTF-8 text",
        "line 9: field 'step' is missing",
    ]
    assert got.truncated_tail and got.next_line == 10  # the partial line is left for the next read
    skipped = SkippedLines(path.name)
    assert [r.step for r in stream_jsonl(path, parse_step, skipped, final=True)] == [1, 2, 3]
    assert skipped.count == 6 and str(skipped.first[-1]) == f"line 10: {PARTIAL_LINE}"
    assert skipped.summary() == "skipped 6 malformed lines in metrics.jsonl (first: line 2: field 'step' expected an integer, got 'abc')"
    live = SkippedLines(path.name)
    assert len(list(stream_jsonl(path, parse_step, live))) == 3 and live.count == 5  # a live writer is still writing it
    first_two = len(lines[0]) + 1 + len(lines[1]) + 1
    for end, steps in ((first_two, [1]), (first_two - 1, [1]), (len(lines[0]) + 1, [1]), (len(lines[0]), [])):
        snapshot = SkippedLines(path.name)  # ``end``: as if the file ended there (a line cut there is being written)
        assert [r.step for r in stream_jsonl(path, parse_step, snapshot, end=end)] == steps
        assert snapshot.count == (1 if end == first_two else 0)


def test_skipped_lines_keep_the_count_but_only_the_first_reasons():
    skipped = SkippedLines("events.jsonl", keep=2)
    assert skipped.summary() is None
    for n in range(1, 6):
        with pytest.raises(RecordError) as err:
            decode_line(b'{"kind": "deliverable", "metric": "m", "passed": "maybe"}', parse_event)
        skipped.add(LineProblem(n, str(err.value)))
    assert skipped.count == 5 and len(skipped.first) == 2
    assert skipped.as_dict()["lines"][0] == {"line": 1, "reason": "field 'passed' expected true or false, got 'maybe'"}
    assert skipped.summary().startswith("skipped 5 malformed lines in events.jsonl (first: line 1: ")
