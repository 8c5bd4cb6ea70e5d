"""The console's data layer without a terminal: incremental columns, resume, downsample, index."""

from __future__ import annotations

import json

import numpy as np
from run_factory import BASE_TIME, append_steps, make_big_run, make_run

from voltx.console.data import RunIndex
from voltx.console.series import MetricSeries, downsample
from pilot_support import root  # noqa: F401  (fixtures)


def test_incremental_read_only_new_bytes_and_half_lines(root):
    run = make_run(root, steps=10)
    reader = MetricSeries(run / "metrics.jsonl")
    assert reader.refresh() and len(reader) == 10 and reader.snapshot().loss_terms == ("loss", "loss_contrastive", "loss_role")
    offset, before = reader.offset, reader.snapshot()
    assert not reader.refresh() and reader.offset == offset and reader.snapshot() is before  # nothing new: nothing read
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 11, "losses": {"loss": 0.5}, "lr": 0.1')  # half a line
    assert not reader.refresh() and reader.snapshot().truncated_tail and len(reader.snapshot()) == 10
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(', "new_key": 7}\n')
    assert reader.refresh()
    s = reader.snapshot()
    assert len(s) == 11 and s.latest("loss") == 0.5 and s.latest("new_key") == 7
    assert np.isnan(s.array("new_key")[0]) and np.isnan(s.array("loss_role")[-1])  # absent -> NaN, columns aligned
    assert len(before) == 10 and "new_key" not in before.columns and not before.truncated_tail  # the old view is as it was


def test_resume_drops_superseded_steps(root):
    run = make_run(root, steps=30)
    append_steps(run, 21, 5, total=60)  # a resume from the step-20 checkpoint logs 21.. again
    reader = MetricSeries(run / "metrics.jsonl")
    reader.refresh()
    assert reader.snapshot().array("step").tolist() == list(range(1, 26))


def test_lines_that_are_not_step_records_are_skipped_as_report_and_export_skip_them(root):
    """The series reads through voltx.runs.records like every other reader: a wrong type skips
    the line (never a point at a made-up step); NaN/Infinity are null; unknown fields are kept."""
    path = root / "m.jsonl"
    lines = [json.dumps(r) for r in [{"step": 1, "lr": "high"}, {"step": 2, "lr": 0.5}, [1, 2], {"step": "abc", "lr": 0.1},
                                     {"lr": 0.2}, {"step": 3.0, "lr": 0.3, "extra_metric": 4.5}]]
    lines.append('{"step": 4, "lr": NaN, "losses": {"loss": Infinity}}')  # Python's json.dumps writes these
    path.write_text("\n".join(lines) + "\n")
    reader = MetricSeries(path)
    reader.refresh()
    s = reader.snapshot()
    assert s.corrupt_lines == (1, 3, 4, 5)
    assert s.array("step").tolist() == [2, 3, 4]
    assert s.array("lr")[:2].tolist() == [0.5, 0.3] and np.isnan(s.array("lr")[2]) and np.isnan(s.array("loss")[2])
    assert s.latest("extra_metric") is None and s.array("extra_metric")[1] == 4.5


def test_downsample_keeps_extremes_and_bounds_points():
    x = np.arange(100_001, dtype=float)
    y = np.sin(x / 1000)
    y[54_321] = 50.0  # a spike must survive
    xs, ys = downsample(x, y, buckets=500)
    assert len(xs) <= 1000 and max(ys) == 50.0 and min(ys) == y.min()
    assert xs == sorted(xs)
    small_x, small_y = downsample(x[:2001], y[:2001], buckets=1000)  # one padded bucket, never an empty one
    assert len(small_x) <= 2000 and not np.isnan(small_y).any()


def test_preview_then_full_read_of_a_big_run(root):
    run = make_big_run(root, steps=60_000)
    preview = MetricSeries(run / "metrics.jsonl")
    assert preview.read_preview() and preview.snapshot().preview and 1000 < len(preview.snapshot()) < 60_000
    full = MetricSeries(run / "metrics.jsonl")
    assert not full.snapshot().preview
    full.refresh()
    assert len(full.snapshot()) == 60_000 and full.snapshot().latest("step") == 60_000


def test_index_rescans_only_changed_runs(root, monkeypatch):
    a = make_run(root, "f1", created_at=BASE_TIME)
    make_run(root, "f2", created_at=BASE_TIME + 60)
    index = RunIndex([root])
    assert index.scan() and len(index.rows) == 2
    reads = []
    import voltx.console.data as data

    real = data.summarize
    monkeypatch.setattr(data, "summarize", lambda d: reads.append(d) or real(d))
    before = index.rows[a]
    assert not index.scan() and reads == []  # nothing changed: no file read
    append_steps(a, 51, 3, total=60)
    assert index.scan() and reads == [a] and index.rows[a].step == 53
    # the summary `voltx status` prints, swapped in whole: a screen holding the old one keeps it as it was
    assert index.rows[a] == real(a) and before.step != 53 and before is not index.rows[a]


def test_a_snapshot_never_changes_while_the_reader_reads_on(root):
    """Screens draw SeriesViews on the UI thread while the worker's reader appends, grows its
    buffers and drops superseded steps: a view taken before any of that stays exactly as it was."""
    run = make_run(root, steps=30)
    reader = MetricSeries(run / "metrics.jsonl")
    reader.refresh()
    before = reader.snapshot()
    copies = {k: v.copy() for k, v in before.columns.items()}
    with np.testing.assert_raises(ValueError):
        before.columns["loss"][0] = 1.0  # read-only: a screen cannot change what the worker wrote
    append_steps(run, 31, 2000, total=3000)  # past the first buffer: the reader grows
    reader.refresh()
    grown = reader.snapshot()
    append_steps(run, 21, 5, total=3000)  # a resume from step 20: steps 21.. again, the rest superseded
    reader.refresh()
    after = reader.snapshot()
    assert after.array("step").tolist() == list(range(1, 26)) and len(grown) == 2030
    for k, v in copies.items():
        assert np.array_equal(before.columns[k], v, equal_nan=True)
    assert len(before) == 30 and all(len(c) == 30 for c in before.columns.values())
    assert grown.array("step")[-1] == 2030 and all(len(c) == 2030 for c in grown.columns.values())


def test_run_snapshot_is_frozen_and_reused_until_something_new_is_read(root):
    from dataclasses import FrozenInstanceError

    from voltx.console.run_data import RunData

    run = make_run(root, status="running", steps=10, alerts=1)
    reader = RunData(run)
    reader.refresh()
    view = reader.snapshot()
    assert not reader.refresh() and reader.snapshot() is view  # nothing new: the same object, no copies
    with np.testing.assert_raises(FrozenInstanceError):
        view.status = "finished"
    alerts, log, total = view.alerts, view.log, view.log_total
    with open(run / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"time": 1, "kind": "alert", "step": 11, "severity": "warn", "rule": "r", "message": "m"}) + "\n")
    with open(run / "stdout.log", "a") as fh:
        fh.write("fresh line\n")
    append_steps(run, 11, 3, total=20)
    assert reader.refresh()
    new = reader.snapshot()
    assert len(new.alerts) == len(alerts) + 1 and new.log[-1] == "fresh line" and len(new.series) == 13
    assert view.alerts is alerts and view.log is log and view.log_total == total and len(view.series) == 10


def test_two_deliverables_on_one_metric_are_two_verdicts(root):
    """lvm judges its cosine against 0.70 and 0.85: both verdicts are kept (the second no longer
    replaces the first), each with the metric's evaluation history, the lower threshold first."""
    from voltx.console.run_data import RunData

    run = make_run(root, deliverables=False)
    with open(run / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"time": 1, "kind": "evaluation", "stage": "lvm", "step": 50, "epoch": 1, "metrics": {"lvm/cosine": 0.74}}) + "\n")
        for threshold in (0.85, 0.7):
            fh.write(json.dumps({"time": 2, "kind": "deliverable", "step": 50, "metric": "lvm/cosine", "op": ">=", "threshold": threshold,
                                 "value": 0.74, "passed": threshold < 0.74}) + "\n")
    reader = RunData(run)
    reader.refresh()
    cosine = [(v.threshold, v.passed, v.history) for v in reader.snapshot().verdicts if v.metric == "lvm/cosine"]
    assert cosine == [(0.7, True, (0.74,)), (0.85, False, (0.74,))]


def test_a_runs_declared_deliverables_show_with_their_targets_before_it_is_judged(root):
    """A live translator run: its phase's three deliverables are pending rows with their targets
    (an evaluated one keeps its history); a verdict the run records replaces its row."""
    from voltx.console.run_data import RunData

    run = make_run(root, "translator", status="stale", deliverables=False)
    with open(run / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"time": 1, "kind": "evaluation", "stage": "encoder", "step": 50,
                             "metrics": {"encoder/valid_role_accuracy": 0.7, "encoder/valid_loss": 4.0}}) + "\n")
    reader = RunData(run)
    reader.refresh()
    rows = {v.metric: (v.op, v.threshold, v.passed, v.history) for v in reader.snapshot().verdicts}
    assert rows["encoder/valid_role_accuracy"] == (">=", 0.85, None, (0.7,))
    assert rows["decoder/valid_token_accuracy"] == (">=", 0.6114, None, ())
    assert rows["encoder/valid_loss"] == (None, None, None, (4.0,))  # evaluated only: no target
    with open(run / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"time": 2, "kind": "deliverable", "step": 50, "metric": "encoder/valid_role_accuracy", "op": ">=",
                             "threshold": 0.85, "value": 0.7, "passed": False}) + "\n")
    reader.refresh()
    judged = [v for v in reader.snapshot().verdicts if v.metric == "encoder/valid_role_accuracy"]
    assert [(v.passed, v.value) for v in judged] == [(False, 0.7)]


def test_stages_are_where_each_stage_begins_after_a_resume_too(root):
    run = make_run(root, steps=30)
    metrics = run / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    for rec in records:
        if rec["step"] > 20:
            rec["stage"] = "decoder"
        if rec["step"] == 25:
            del rec["stage"]  # a record that names no stage belongs to the one before it
    metrics.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    reader = MetricSeries(metrics)
    reader.refresh()
    assert reader.snapshot().stages() == (("encoder", 1.0), ("decoder", 21.0))
    append_steps(run, 16, 3, total=60)  # a resume from step 15 logs encoder steps 16.. again
    reader.refresh()
    view = reader.snapshot()
    assert view.stages() == (("encoder", 1.0),) and view.array("step").tolist() == list(range(1, 19))
