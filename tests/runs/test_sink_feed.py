"""The live sink feed: every record the run store writes reaches each sink as its record type, on
the sink's own thread; a sink that raises, lags or hangs never stops or slows the run."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from voltx.errors import PreflightError, UsageError
from voltx.plugin_specs import SinkSpec
from voltx.runs import sink_feed
from voltx.runs.records import Alert, Deliverable, End, Evaluation, Event, Resumed, StepRecord
from voltx.runs.sink_feed import SinkFeed, check_sinks
from voltx.runs.store import RunWriter


class Keep:
    """A sink that keeps what it gets; ``gate`` (when set) holds every write until it opens."""

    def __init__(self, gate: threading.Event | None = None):
        self.records, self.closed, self.gate, self.run_dirs = [], False, gate, []

    def factory(self, run_dir):
        self.run_dirs.append(Path(run_dir))
        return self

    def write(self, record):
        if self.gate is not None:
            self.gate.wait(10)
        self.records.append(record)

    def close(self):
        self.closed = True


class Raises:
    def __init__(self, run_dir, on=StepRecord):
        self.on, self.calls = on, 0

    def write(self, record):
        self.calls += 1
        if isinstance(record, self.on):
            raise RuntimeError("tracker down")

    def close(self):
        pass


def open_run(tmp_path: Path, *specs: SinkSpec, resume: Path | None = None) -> RunWriter:
    writer = RunWriter.resume(resume, []) if resume else RunWriter.create(tmp_path / "runs", "toy", config_toml="", overrides=[], preset=None, argv=[])

    def report(name, message):
        writer.event("alert", rule="sink", severity="error", sink=name, message=message)

    writer.attach_sinks(SinkFeed(list(specs), writer.dir, report))
    return writer


def events(writer: RunWriter) -> list[dict]:
    return [json.loads(line) for line in writer.paths.events.read_text().splitlines()]


def test_every_record_reaches_the_sink_as_its_type_in_order(tmp_path):
    keep = Keep()
    writer = open_run(tmp_path, SinkSpec("keep", "", keep.factory))
    writer.event("start", phase="toy")
    for step in (1, 2):
        writer.log_metrics({"step": step, "losses": {"loss": 1.0 / step}, "rar/iterations_mean": 3.5})
    writer.event("evaluation", step=2, metrics={"fit/mse": 0.25})
    writer.event("deliverable", step=2, metric="fit/mse", op="<", threshold=0.5, value=0.25, passed=True)
    writer.event("alert", rule="loss-spike", message="loss 9 is 5x the median", step=2)
    writer.event("rar", step=2, iterations=[3, 4], max_iterations=8)
    writer.close("finished", 0)
    assert keep.run_dirs == [writer.dir] and keep.closed
    kinds = [type(r) for r in keep.records]
    assert kinds == [Event, StepRecord, StepRecord, Evaluation, Deliverable, Alert, Event, End]
    assert keep.records[1].losses == {"loss": 1.0} and keep.records[1].extra == {"rar/iterations_mean": 3.5}
    assert keep.records[1].attempt == 1 and keep.records[1].time is not None  # as the store wrote it
    assert (keep.records[4].value, keep.records[4].threshold, keep.records[4].passed) == (0.25, 0.5, True)
    assert keep.records[6].extra["max_iterations"] == 8 and keep.records[-1].status == "finished"


def test_a_resumed_attempt_starts_with_its_resumed_record(tmp_path):
    first = open_run(tmp_path, SinkSpec("keep", "", Keep().factory))
    first.close("preempted", 75)
    keep = Keep()
    writer = open_run(tmp_path, SinkSpec("keep", "", keep.factory), resume=first.dir)
    writer.mark_resumed(4)
    writer.close("finished", 0)
    assert isinstance(keep.records[0], Resumed) and (keep.records[0].from_step, keep.records[0].attempt) == (4, 2)


def test_a_raising_sink_is_one_alert_and_disabled_and_the_run_goes_on(tmp_path):
    keep = Keep()
    bad: list[Raises] = []
    writer = open_run(tmp_path, SinkSpec("bad", "", lambda d: bad.append(Raises(d)) or bad[0]), SinkSpec("keep", "", keep.factory))
    for step in range(1, 6):
        writer.log_metrics({"step": step, "losses": {"loss": 1.0}})
    writer.close("finished", 0)
    assert bad[0].calls == 1  # disabled at its first error: never called again
    [alert] = [e for e in events(writer) if e["kind"] == "alert"]
    assert alert["rule"] == "sink" and alert["sink"] == "bad"
    assert "sink 'bad' failed on a metrics.jsonl record (RuntimeError: tracker down)" in alert["message"]
    assert "disabled" in alert["message"]
    assert [r.step for r in keep.records if isinstance(r, StepRecord)] == [1, 2, 3, 4, 5]  # the others go on


def test_a_sink_that_cannot_start_is_an_alert(tmp_path):
    def broken(run_dir):
        raise ConnectionError("no route to the tracking server")

    writer = open_run(tmp_path, SinkSpec("down", "", broken))
    writer.log_metrics({"step": 1, "losses": {"loss": 1.0}})
    writer.close("finished", 0)
    [alert] = [e for e in events(writer) if e["kind"] == "alert"]
    assert "sink 'down' failed to start (ConnectionError: no route to the tracking server)" in alert["message"]


def test_a_slow_sink_never_blocks_the_writer_it_loses_the_newest_records(tmp_path, monkeypatch):
    monkeypatch.setattr(sink_feed, "CAPACITY", 3)
    gate = threading.Event()
    slow = Keep(gate)
    writer = open_run(tmp_path, SinkSpec("slow", "", slow.factory))
    for step in range(1, 11):  # the sink holds its first record: the queue fills at 3
        writer.log_metrics({"step": step, "losses": {"loss": 1.0}})
    gate.set()
    writer.close("finished", 0)
    alerts = [e["message"] for e in events(writer) if e["kind"] == "alert"]
    assert "sink 'slow' is more than 3 records behind" in alerts[0]
    steps = [r.step for r in slow.records if isinstance(r, StepRecord)]
    assert steps == list(range(1, len(steps) + 1)) and 3 <= len(steps) <= 4
    offered = 10 + 2  # the steps, the first alert, the end
    assert f"dropped {offered - len(slow.records)} records" in alerts[-1]


def test_a_hanging_sink_delays_the_end_by_the_timeout_only(tmp_path, monkeypatch):
    monkeypatch.setattr(sink_feed, "CLOSE_TIMEOUT", 0.3)
    release = threading.Event()

    class Hangs(Keep):
        def close(self):
            release.wait(10)

    writer = open_run(tmp_path, SinkSpec("hangs", "", Hangs().factory))
    writer.log_metrics({"step": 1, "losses": {"loss": 1.0}})
    writer.close("finished", 0)
    release.set()
    [alert] = [e["message"] for e in events(writer) if e["kind"] == "alert"]
    assert "sink 'hangs' did not finish within 0.3 s" in alert


class Registry:
    def __init__(self, *specs):
        self.specs = {s.name: s for s in specs}

    def get(self, kind, name):
        if name not in self.specs:
            raise UsageError(f"unknown sink {name!r}")
        return self.specs[name]


def test_check_sinks_refuses_a_sink_whose_package_is_missing_with_the_pip_line(tmp_path):
    spec = SinkSpec("tracker", "", "voltx_no_such_tracker_sink:Sink", requires=("voltx_no_such_tracker",), extra="tracker")
    with pytest.raises(PreflightError, match=r"sink 'tracker' needs voltx_no_such_tracker, which is not installed: "
                                             r'pip install "voltx\[tracker\]"'):
        check_sinks(Registry(spec), ["tracker"], tmp_path)
    bare = SinkSpec("bare", "", "x:y", requires=("voltx_no_such_tracker",))
    with pytest.raises(PreflightError, match="pip install voltx_no_such_tracker"):
        check_sinks(Registry(bare), ["bare"], tmp_path)
    with pytest.raises(UsageError):
        check_sinks(Registry(spec), ["nope"], tmp_path)
    assert check_sinks(Registry(SinkSpec("ok", "", "x:y", requires=("json",))), ["ok"], tmp_path)[0].name == "ok"
