"""The run store: the writer's layout and lock, stale detection, RUN resolution and summaries."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import voltx.runs.store as store
from voltx.errors import EXIT_RUN_LOCKED, DataError, MissingInputError, RunLockedError, UsageError, VoltxError
from voltx.runs.layout import FORMAT_VERSION, RunPaths, list_run_dirs, load_manifest, resolve_run, runs_root
from voltx.runs.lock import RunLock, writer_alive
from voltx.runs.records import Resumed
from voltx.runs.store import RunReader, RunWriter, effective_status, eta_seconds, summarize


def new_writer(root: Path, phase: str = "translator") -> RunWriter:
    return RunWriter.create(
        root,
        phase,
        config_toml="[run]\nseed = 1\n",
        overrides=["encoder.lr=1e-3", "hardware.device=cpu"],
        preset="quick",
        argv=["voltx", "run", phase],
    )


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "runs"


def append_line(w: RunWriter, path: Path, record: dict) -> None:
    """A line another writer (or a damaged disk) left: the writer itself refuses to write it."""
    w.flush()
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def fake_run(root: Path, phase: str, name: str, manifest: dict | None = None) -> Path:
    d = root / phase / name
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps(manifest or {"phase": phase, "status": "finished", "id": name}))
    return d


# --- the writer -------------------------------------------------------------------------------------


def test_create_makes_the_documented_layout(root):
    w = new_writer(root)
    try:
        assert w.dir.parent == root / "translator"
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", w.dir.name)
        m = json.loads((w.dir / "run.json").read_text())
        assert m["format_version"] == FORMAT_VERSION
        assert m["phase"] == "translator" and m["id"] == w.dir.name and m["preset"] == "quick"
        assert m["status"] == "running"
        assert m["pid"] == os.getpid() and m["host"] == socket.gethostname()
        assert len(m["attempts"]) == 1 and m["attempts"][0]["pid"] == os.getpid()
        assert m["argv"] == ["voltx", "run", "translator"]
        assert (w.dir / "config.toml").read_text() == "[run]\nseed = 1\n"
        assert (w.dir / "overrides.txt").read_text() == "encoder.lr=1e-3\nhardware.device=cpu\n"
        assert writer_alive(w.dir)
        assert json.loads((w.dir / "lock").read_text())["pid"] == os.getpid()
        assert effective_status(w.dir, load_manifest(w.dir)) == "running"
    finally:
        w.close("finished", 0)


def test_logging_goes_to_the_documented_files(root):
    w = new_writer(root)
    w.log_metrics({"step": 1, "losses": {"total": 2.5}})
    w.event("alert", rule="loss-spike", step=1, message="spike")
    w.stdout("hello")
    w.close("finished", 0, "done")
    p = RunPaths(w.dir)
    metrics = [json.loads(x) for x in p.metrics.read_text().splitlines()]
    assert metrics[0]["step"] == 1 and metrics[0]["attempt"] == 1 and "time" in metrics[0]
    kinds = [json.loads(x)["kind"] for x in p.events.read_text().splitlines()]
    assert kinds == ["alert", "end"]
    assert p.stdout.read_text() == "hello\n"


def test_second_writer_is_refused_while_the_first_holds_the_lock(root):
    w = new_writer(root)
    before = (w.dir / "run.json").read_bytes()
    with pytest.raises(RunLockedError) as err:
        RunWriter.resume(w.dir, ["voltx", "run", "translator", "--resume", "auto"])
    assert err.value.exit_code == EXIT_RUN_LOCKED == 81
    assert f"pid {os.getpid()}" in str(err.value)
    assert (w.dir / "run.json").read_bytes() == before
    assert writer_alive(w.dir)
    w.close("finished", 0)


def test_close_records_the_end_and_frees_the_lock(root):
    w = new_writer(root)
    w.close("preempted", 75, "stopped by SIGTERM")
    m = json.loads((w.dir / "run.json").read_text())
    assert m["status"] == "preempted" and m["exit_code"] == 75 and m["message"] == "stopped by SIGTERM"
    assert m["ended_at"] >= m["started_at"]
    assert m["attempts"][-1]["status"] == "preempted" and m["attempts"][-1]["exit_code"] == 75
    assert not writer_alive(w.dir)
    assert summarize(w.dir).status == "preempted"
    # the lock is free: a resume takes it, starts a second attempt and records the event
    r = RunWriter.resume(w.dir, ["voltx", "run", "translator", "--resume", "auto"])
    r.mark_resumed(from_step=10)
    assert writer_alive(w.dir)
    r.close("finished", 0)
    m = json.loads((w.dir / "run.json").read_text())
    assert m["status"] == "finished" and len(m["attempts"]) == 2
    assert m["attempts"][1]["resumed_from_step"] == 10
    reader = RunReader(w.dir)
    reader.refresh()
    assert [e.from_step for e in reader.events_of(Resumed)] == [10]


def test_a_resume_replaces_the_message_of_the_previous_attempt(root):
    w = new_writer(root)
    w.close("preempted", 75, "stopped by SIGTERM at step 12; resume with ...")
    r = RunWriter.resume(w.dir, ["voltx", "run", "translator", "--resume", "auto"])
    r.mark_resumed(from_step=12)
    assert json.loads((w.dir / "run.json").read_text())["message"] == "resumed from step 12"
    r.close("failed", 1, "boom")
    r = RunWriter.resume(w.dir, [])
    r.mark_resumed(from_step=None)
    assert json.loads((w.dir / "run.json").read_text())["message"] == "resumed from the start"
    r.close("finished", 0)


def test_close_on_a_full_disk_says_so_and_frees_the_lock(root, monkeypatch, capsys):
    import errno

    w = new_writer(root)

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store, "_atomic_write_text", full)
    w.close("failed", 73, "cannot write checkpoint")  # no traceback
    assert "could not record the end of the run" in capsys.readouterr().err
    assert not writer_alive(w.dir) and summarize(w.dir).status == "stale"  # resumable


def test_resume_of_a_newer_format_is_refused(root):
    d = fake_run(root, "translator", "20240101-000000-aaaaaa", {"format_version": FORMAT_VERSION + 1, "status": "preempted"})
    with pytest.raises(VoltxError, match="newer voltx"):
        RunWriter.resume(d, [])


def test_resume_of_a_directory_without_run_json(tmp_path):
    with pytest.raises(MissingInputError, match="run.json"):
        RunWriter.resume(tmp_path, [])


KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys, pathlib
    from voltx.runs.store import RunWriter
    w = RunWriter.create(pathlib.Path(sys.argv[1]), "translator", config_toml="", overrides=[], preset=None, argv=[])
    for step in (1, 2, 3):
        w.log_metrics({"step": step, "losses": {"total": 1.0 / step}})
    w.flush()
    print(w.dir, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_a_killed_writer_leaves_a_stale_run(root):
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_dir = Path(proc.stdout.strip())
    m = json.loads((run_dir / "run.json").read_text())
    assert m["status"] == "running"  # nobody recorded the end
    assert not writer_alive(run_dir)  # but the kernel dropped the lock
    assert effective_status(run_dir, load_manifest(run_dir)) == "stale"
    s = summarize(run_dir)
    assert s.status == "stale" and s.step == 3 and s.losses == {"total": pytest.approx(1 / 3)}
    assert s.eta_s is None
    # and a new writer may take the run over
    RunWriter.resume(run_dir, []).close("failed", 1)


def test_lock_is_exclusive_between_two_lock_objects(tmp_path):
    first, second = RunLock(tmp_path / "lock"), RunLock(tmp_path / "lock")
    first.acquire()
    with pytest.raises(RunLockedError):
        second.acquire()
    first.release()
    second.acquire()
    second.release()
    assert not writer_alive(tmp_path)
    assert not writer_alive(tmp_path / "no-such-run")


# --- finding runs -----------------------------------------------------------------------------------


@pytest.fixture
def three_runs(root):
    return {
        "a": fake_run(root, "translator", "20240101-000000-aaaaaa"),
        "b": fake_run(root, "translator", "20240102-000000-abcdef"),
        "c": fake_run(root, "f2", "20240103-000000-bbbbbb"),
    }


def test_list_run_dirs_ignores_stray_entries(root, three_runs):
    (root / "README.txt").write_text("x")
    (root / "translator" / "notes.txt").write_text("x")
    (root / "translator" / "not-a-run").mkdir()
    (root / "translator" / ".tmp-20240104").mkdir()
    (root / "empty-phase").mkdir()
    assert list_run_dirs(root) == [three_runs["a"], three_runs["b"], three_runs["c"]]
    assert list_run_dirs(root / "absent") == []


def test_resolve_run_by_path(root, three_runs):
    assert resolve_run(str(three_runs["b"]), root) == three_runs["b"]
    # relative to the working directory (the autouse fixture made it tmp_path)
    assert resolve_run("runs/f2/20240103-000000-bbbbbb", root) == Path("runs/f2/20240103-000000-bbbbbb")


def test_resolve_run_latest(root, three_runs):
    assert resolve_run("latest", root) == three_runs["c"]
    assert resolve_run("latest", root, phase="translator") == three_runs["b"]
    with pytest.raises(MissingInputError, match="no runs"):
        resolve_run("latest", root, phase="d1")
    with pytest.raises(MissingInputError, match="no runs"):
        resolve_run("latest", root / "absent")


def test_resolve_run_by_id_prefix_and_hex_suffix(root, three_runs):
    assert resolve_run("20240102", root) == three_runs["b"]
    assert resolve_run("20240101-000000-aaaaaa", root) == three_runs["a"]
    assert resolve_run("bbb", root) == three_runs["c"]
    assert resolve_run("abc", root) == three_runs["b"]


def test_resolve_run_ambiguous_prefix_lists_matches(root, three_runs):
    with pytest.raises(UsageError) as err:
        resolve_run("a", root)  # aaaaaa and abcdef
    msg = str(err.value)
    assert "translator/20240101-000000-aaaaaa" in msg and "translator/20240102-000000-abcdef" in msg
    assert "2 runs" in msg
    with pytest.raises(UsageError, match="3 runs"):
        resolve_run("202401", root)


def test_resolve_run_no_match(root, three_runs, tmp_path):
    with pytest.raises(MissingInputError, match="no run matches 'zzz'"):
        resolve_run("zzz", root)
    plain = tmp_path / "plain-dir"
    plain.mkdir()
    with pytest.raises(MissingInputError, match="not a run directory"):
        resolve_run(str(plain), root)


def test_runs_root_precedence(monkeypatch, tmp_path):
    """--runs-dir > VOLTX_RUNS_DIR > [paths].runs_dir of the config in use (--config, else
    ./training_config.toml; a paths.runs_dir= override replaces it) > ./runs."""
    other = tmp_path / "other.toml"
    other.write_text('[paths]\nruns_dir = "from-other"\n')
    (tmp_path / "training_config.toml").write_text('[paths]\nruns_dir = "from-cwd"\n')  # the cwd is tmp_path
    monkeypatch.setenv("VOLTX_RUNS_DIR", str(tmp_path / "env"))
    assert runs_root("explicit", other) == Path("explicit")
    assert runs_root(None, other, ["paths.runs_dir=over"]) == tmp_path / "env"
    monkeypatch.delenv("VOLTX_RUNS_DIR")
    assert runs_root(None, other) == Path("from-other")
    assert runs_root(None, None) == Path("from-cwd")
    assert runs_root(None, other, ['paths.runs_dir="over"']) == Path("over")
    (tmp_path / "training_config.toml").write_text("[paths\n")  # broken: commands that read runs still work
    assert runs_root(None, None) == Path("runs")
    (tmp_path / "training_config.toml").unlink()
    assert runs_root(None, None) == Path("runs")  # the shipped curriculum's [paths].runs_dir


# --- summaries ------------------------------------------------------------------------------------


def test_summarize_reads_only_the_tail_of_metrics(root, monkeypatch):
    d = fake_run(root, "translator", "20240101-000000-aaaaaa")
    metrics = RunPaths(d).metrics
    with open(metrics, "w") as fh:
        for step in range(1, 20001):
            fh.write(json.dumps({"step": step, "total_steps": 20000, "losses": {"total": 1.0, "role": 0.5}, "pad": "x" * 40}) + "\n")
        fh.write('{"step": 20001, "losses": {"tot')  # a record being written
    size = metrics.stat().st_size
    assert size > 1_000_000
    reads = []
    real = store.read_jsonl

    def spy(path, offset=0, *args, **kwargs):
        reads.append((path, offset))
        return real(path, offset, *args, **kwargs)

    monkeypatch.setattr(store, "read_jsonl", spy)
    s = summarize(d)
    assert s.step == 20000 and s.total_steps == 20000
    assert s.losses == {"total": 1.0, "role": 0.5}
    assert [p for p, _ in reads] == [metrics]
    assert size - reads[0][1] <= 65536  # only the tail


def test_summarize_live_run_computes_eta(root):
    w = new_writer(root)
    try:
        w.log_metrics({"step": 50, "total_steps": 150, "steps_per_sec": 10.0, "samples_per_sec": 640.0, "stage": "encoder",
                       "losses": {"total": 1.5, "bad": None}})
        append_line(w, w.paths.metrics, {"step": 51, "losses": {"total": "x"}})  # not a step record: skipped, never shown as step 51
        w.flush()
        s = summarize(w.dir)
        assert s.status == "running"
        assert s.step == 50 and s.total_steps == 150 and s.stage == "encoder"
        assert s.eta_s == pytest.approx(10.0)
        assert s.samples_per_sec == 640.0
        assert s.losses == {"total": 1.5}  # nulls (NaN) left out
        assert s.host == socket.gethostname()
        d = s.as_dict()
        assert d["dir"] == str(w.dir)
        json.dumps(d)
    finally:
        w.close("finished", 0)
    s = summarize(w.dir)
    assert s.status == "finished" and s.eta_s is None and s.exit_code == 0


def test_the_eta_assumes_the_wall_pace_evaluations_included_and_reads_older_records_by_their_speed(root):
    w = new_writer(root)
    try:
        w.log_metrics({"step": 50, "total_steps": 150, "steps_per_sec": 10.0, "wall_steps_per_sec": 2.0, "losses": {"total": 1.0}})
        w.flush()
        assert summarize(w.dir).eta_s == pytest.approx(50.0)  # 100 steps at 2/s of wall time, not 10 s at the training speed
    finally:
        w.close("finished", 0)
    assert eta_seconds("running", 50, 150, 10.0) == pytest.approx(10.0)  # a record an older voltx wrote


def test_summarize_run_without_metrics(root):
    w = new_writer(root)
    w.close("failed", 1, "boom")
    s = summarize(w.dir)
    assert s.status == "failed" and s.step is None and s.losses == {} and s.problems == []


def test_newer_format_version_is_a_problem_not_a_crash(root):
    d = fake_run(root, "translator", "20240101-000000-aaaaaa", {"format_version": FORMAT_VERSION + 1, "status": "finished", "phase": "translator"})
    s = summarize(d)
    assert any("newer voltx" in p for p in s.problems)
    assert s.status == "finished"


def test_a_truncated_manifest_is_a_damaged_run(root):
    d = fake_run(root, "translator", "20240101-000000-aaaaaa")
    (d / "run.json").write_text('{"status": "runn')
    s = summarize(d)
    assert s.status == "damaged"
    assert s.problems == ["run.json: not valid JSON (line 1 column 12: Unterminated string starting)"]
    assert s.phase == "translator" and s.id == "20240101-000000-aaaaaa"


def test_reader_refreshes_incrementally_and_drops_superseded_steps(root):
    w = new_writer(root)
    for step in (1, 2, 3):
        w.log_metrics({"step": step, "losses": {"total": float(step)}})
    w.flush()
    reader = RunReader(w.dir)
    reader.refresh()
    assert [m.step for m in reader.metrics] == [1, 2, 3]
    with open(w.paths.metrics, "a") as fh:  # something else scribbled on the file
        fh.write("garbage\n")
    w.mark_resumed(from_step=2)
    for step in (3, 4):
        w.log_metrics({"step": step, "losses": {"total": 10.0 + step}})
    w.close("finished", 0)
    reader.refresh()
    assert [(m.step, m.attempt) for m in reader.metrics] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    skipped = reader.skipped("metrics")
    assert skipped.count == 1 and str(skipped.first[0]).startswith("line 4: not valid JSON")  # the line's number in the file
    assert [e.kind for e in reader.events] == ["resumed", "end"]
    assert reader.status == "finished"


def test_summarize_tolerates_odd_types_in_a_metrics_record(root):
    w = new_writer(root)
    try:
        append_line(w, w.paths.metrics, {"step": "x", "losses": [1, 2], "samples_per_sec": "fast", "total_steps": "many", "steps_per_sec": True, "stage": 3})
        w.flush()
        s = summarize(w.dir)
        assert (s.step, s.losses, s.samples_per_sec, s.total_steps, s.stage, s.eta_s) == (None, {}, None, None, None, None)
        assert s.status == "running"
    finally:
        w.close("finished", 0)


@pytest.mark.parametrize("text, got", [("[1, 2]", "a list"), ('"running"', "'running'"), ("null", "null")])
def test_manifest_that_is_not_an_object_is_damaged(root, text, got):
    d = fake_run(root, "translator", "20240101-000000-aaaaaa")
    (d / "run.json").write_text(text)
    s = summarize(d)
    assert s.status == "damaged" and s.problems == [f"run.json: expected a JSON object, got {got}"]
    with pytest.raises(DataError, match=f"run.json: expected a JSON object, got {re.escape(got)}. voltx will not resume it"):
        RunWriter.resume(d, [])


def test_latest_orders_runs_started_in_the_same_second(root):
    # the random suffixes sort against the start order: created_at decides
    first = fake_run(root, "translator", "20240101-000000-ffffff", {"status": "finished", "created_at": 1.0})
    second = fake_run(root, "f2", "20240101-000000-000000", {"status": "finished", "created_at": 1.5})
    assert list_run_dirs(root) == [first, second]
    assert resolve_run("latest", root) == second
    assert resolve_run("latest", root, phase="translator") == first


# --- run.json is read through its record type (voltx.runs.records.Manifest) ------------------------------


def damage_manifest(run_dir: Path, **fields) -> None:
    """A foreign writer (a plugin, a hand edit) left fields of the wrong type in run.json."""
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest.update(fields)
    (run_dir / "run.json").write_text(json.dumps(manifest, indent=1))


@pytest.mark.parametrize("fields, reason", [
    ({"exit_code": "x"}, "field 'exit_code' expected an integer, got 'x'"),
    ({"pid": "abc"}, "field 'pid' expected an integer, got 'abc'"),
    ({"started_at": "yesterday"}, "field 'started_at' expected a number, got 'yesterday'"),
    ({"status": ["finished"]}, "field 'status' expected a string, got a list"),
    ({"phase": {"name": "f1"}}, "field 'phase' expected a string, got an object"),
    ({"host": 7}, "field 'host' expected a string, got 7"),
    ({"attempts": "1"}, "field 'attempts' expected a list of objects, got '1'"),
])
def test_a_manifest_field_of_the_wrong_type_makes_the_run_damaged(root, fields, reason):
    w = new_writer(root)
    w.log_metrics({"step": 3, "total_steps": 10, "stage": "encoder", "losses": {"total": 0.5}, "steps_per_sec": 2.0})
    w.close("preempted", 75, "stopped by SIGTERM")
    damage_manifest(w.dir, **fields)
    s = summarize(w.dir)  # the original showed "preempted", with exit code "x", host 7 or phase {"name": ...}
    assert (s.status, s.problems) == ("damaged", [f"run.json: {reason}"])
    assert (s.id, s.phase, s.host, s.started_at, s.ended_at, s.exit_code) == (w.dir.name, "translator", None, None, None, None)
    assert s.step == 3  # metrics.jsonl is its own file: still read
    reader = RunReader(w.dir)
    reader.refresh()
    assert reader.status == "damaged" and reader.manifest.problem == f"run.json: {reason}"
    before = (w.dir / "run.json").read_text()
    with pytest.raises(DataError, match=f"run.json: {re.escape(reason)}. voltx will not resume it"):
        RunWriter.resume(w.dir, ["voltx", "run", "translator", "--resume", str(w.dir)])
    assert (w.dir / "run.json").read_text() == before and not writer_alive(w.dir)  # nothing written, no lock taken


def test_null_is_not_known_and_a_resume_fills_in_the_start(root):
    w = new_writer(root)
    w.close("preempted", 75)
    damage_manifest(w.dir, started_at=None, exit_code=None, host=None)
    s = summarize(w.dir)
    assert (s.status, s.problems, s.started_at, s.exit_code, s.host) == ("preempted", [], None, None, None)
    r = RunWriter.resume(w.dir, [])
    r.mark_resumed(from_step=None)
    r.close("finished", 0)
    m = json.loads((w.dir / "run.json").read_text())
    assert isinstance(m["started_at"], float) and m["host"] == socket.gethostname() and len(m["attempts"]) == 2


def test_a_live_run_with_a_damaged_manifest_is_damaged_not_stale_and_never_taken_over(root, monkeypatch):
    from voltx.runs import launch
    from voltx.runs.resumable import find_resumable

    older = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[], run_id="20240101-000000-aaaaaa")
    older.close("preempted", 75)
    w = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[], run_id="20240101-000001-bbbbbb")
    try:
        w.log_metrics({"step": 4, "stage": "encoder", "losses": {"total": 1.0}, "steps_per_sec": 2.0})  # no total_steps
        w.flush()
        damage_manifest(w.dir, total_steps="many", pid="abc")
        s = summarize(w.dir)  # the original: TypeError computing the ETA from total_steps "many"
        assert s.status == "damaged" and s.eta_s is None and writer_alive(w.dir)
        signalled = []
        monkeypatch.setattr(launch.os, "kill", lambda pid, sig: signalled.append(pid))
        with pytest.raises(DataError, match="field 'pid' expected an integer, got 'abc'. voltx will not signal its process"):
            launch.stop_run(w.dir)
        with pytest.raises(DataError, match="voltx will not resume it"):
            launch.resume_run(w.dir, use_tmux=False)
        with pytest.raises(DataError):  # and were it intact, the lock would refuse a second writer
            RunWriter.resume(w.dir, [])
        assert signalled == [] and writer_alive(w.dir)
        with pytest.raises(RunLockedError, match="being written by another process"):  # live: refused (81) as an intact live one is
            find_resumable(root, "translator")
    finally:
        w.close("finished", 0)
    assert summarize(w.dir).status == "finished"  # the writer's own manifest, rewritten whole at the end


def test_resume_auto_stops_at_a_latest_run_that_is_damaged(root):
    from voltx.runs.resumable import find_resumable

    for run_id in ("20240101-000000-aaaaaa", "20240101-000001-bbbbbb"):
        latest = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[], run_id=run_id)
        latest.close("preempted", 75)
    (latest.dir / "run.json").write_text((latest.dir / "run.json").read_text()[:40])  # cut off by a full disk
    with pytest.raises(DataError, match=r"run.json: not valid JSON \(line \d+ column \d+: .*\). voltx will not resume it"):
        find_resumable(root, "translator")  # the original started a new run past it (status "unknown")


def test_update_manifest_refuses_a_field_every_reader_would_call_damaged(root):
    w = new_writer(root)
    try:
        with pytest.raises(TypeError, match="update_manifest: field 'total_steps' expected an integer, got '10'"):
            w.update_manifest(total_steps="10")
        w.update_manifest(total_steps=10, stage="encoder", my_plugin={"any": ["thing"]})  # undeclared fields: as written
        assert summarize(w.dir).total_steps == 10 and load_manifest(w.dir).record.extra["my_plugin"] == {"any": ["thing"]}
    finally:
        w.close("finished", 0)


def test_the_writer_refuses_lines_every_reader_would_skip(root):
    """log_metrics and event check each line as its record type, as the readers will read it."""
    import numpy as np

    w = new_writer(root)
    try:
        with pytest.raises(TypeError, match="not written: StepRecord field 'step' expected an integer, got 'abc'"):
            w.log_metrics({"step": "abc", "losses": {"loss": 1.0}})
        with pytest.raises(TypeError, match="not written: Deliverable field 'passed' is missing"):
            w.event("deliverable", metric="top1")
        # a numpy float is a float once written; a NaN loss is null; undeclared fields as written
        w.log_metrics({"step": 1, "losses": {"loss": np.float64(0.5), "aux": float("nan")}, "lr": np.float64(1e-3), "mine": [1]})
        w.event("evaluation", step=1, metrics={"encoder/top1": np.float64(0.25)})
        w.flush()
        reader = RunReader(w.dir)
        reader.refresh()
        assert [(r.step, r.losses, r.lr, r.extra) for r in reader.metrics] == [(1, {"loss": 0.5, "aux": None}, 1e-3, {"mine": [1]})]
        assert reader.skipped("metrics").count == 0 and reader.skipped("events").count == 0
    finally:
        w.close("finished", 0)
