"""The read-only commands (status, logs, report) on run stores built with the real RunWriter."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from voltx.errors import EXIT_NO_INPUT
from voltx.plugin_specs import Deliverable
from voltx.runs.store import RunWriter


def make_run(root: Path, phase: str, status: str, exit_code: int, *, steps: int = 3, nan_eval: bool = False,
             judged: bool = False) -> RunWriter:
    w = RunWriter.create(root, phase, config_toml="", overrides=["encoder.lr=1e-3"], preset=None, argv=["voltx", "run", phase])
    w.event("start", phase=phase)
    w.stdout(f"voltx: run {w.dir} (new)")
    for step in range(1, steps + 1):
        w.log_metrics({"step": step, "total_steps": 10, "stage": "encoder", "losses": {"total": 3.0 / step, "role": 0.5 / step},
                       "samples_per_sec": 100.0 + step, "steps_per_sec": 2.0})
        w.stdout(f"step {step}/10 loss {3.0 / step:.3f}")
    metrics = {"encoder.retrieval_top1": 0.42, "decoder.bleu": 0.2}
    if nan_eval:
        metrics["decoder.perplexity"] = float("nan")  # written as null
    w.event("evaluation", step=steps, metrics=metrics)
    w.event("evaluation", step=steps, metrics={"encoder.retrieval_top1": 0.55})  # a later evaluation wins
    w.event("deliverable", metric="encoder.retrieval_top1", op=">=", threshold=0.5, value=0.55, passed=True, description="seed: top-1 >= 50%")
    w.event("deliverable", metric="decoder.bleu", op=">=", threshold=0.3, value=0.2, passed=False, description="seed: BLEU >= 0.3")
    if judged:  # a verdict as Deliverable.judge records it: beside its baselines, ablation and margin
        w.event("deliverable", **Deliverable("encoder.role_acc", ">=", 0.85, "plan: > 85%", baselines=("encoder.role_majority",),
                                             ablations=("encoder.role_untrained",), margin=0.05).judge(
            {"encoder.role_acc": 0.9, "encoder.role_majority": 0.88, "encoder.role_untrained": 0.12}))
    w.event("alert", rule="loss-spike", step=2, message="loss jumped 5x")
    w.close(status, exit_code, "done" if status == "finished" else "stopped by SIGTERM")
    return w


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "runs"  # the autouse fixture points VOLTX_RUNS_DIR here


@pytest.fixture
def two_runs(root):
    first = make_run(root, "translator", "finished", 0)
    time.sleep(0.01)
    second = make_run(root, "f2", "preempted", 75, steps=2)
    return first.dir, second.dir


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr


# --- status -----------------------------------------------------------------------------------------


def test_status_json_lists_runs(cli_in_process, root, two_runs):
    first, second = two_runs
    proc = cli_in_process("status", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["root"] == str(root)
    runs = {r["id"]: r for r in out["runs"]}
    assert set(runs) == {first.name, second.name}
    a, b = runs[first.name], runs[second.name]
    assert (a["phase"], a["status"], a["step"], a["total_steps"], a["exit_code"]) == ("translator", "finished", 3, 10, 0)
    assert a["losses"] == {"total": 1.0, "role": pytest.approx(0.5 / 3)}
    assert a["stage"] == "encoder" and a["samples_per_sec"] == 103.0
    assert (b["phase"], b["status"], b["step"], b["exit_code"]) == ("f2", "preempted", 2, 75)
    assert b["eta_s"] is None  # not running
    only_f2 = json.loads(cli_in_process("status", "--json", "--phase", "f2").stdout)
    assert [r["id"] for r in only_f2["runs"]] == [second.name]


def test_status_runs_dir_flag(cli_in_process, tmp_path):
    other = tmp_path / "elsewhere"
    w = make_run(other, "d1", "finished", 0, steps=1)
    proc = cli_in_process("status", "--json", "--runs-dir", str(other))
    assert [r["id"] for r in json.loads(proc.stdout)["runs"]] == [w.dir.name]


def test_status_plain_without_a_tty(cli, two_runs):
    first, second = two_runs
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    proc = subprocess.run([sys.executable, "-m", "voltx", "status"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr  # stdout was a pipe, 80 columns by default
    no_traceback(proc)
    assert "\x1b[" not in proc.stdout  # no ANSI
    assert not set("│┃━─") & set(proc.stdout)  # no box drawing
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "phase", "status"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}  # one line per run, ids in full
    assert set(rows) == {first.name, second.name}
    assert rows[first.name][1:4] == ["translator", "finished", "3/10"]
    assert rows[second.name][1:4] == ["f2", "preempted", "2/10"]
    assert "total=1.000" in rows[first.name]


def test_status_with_no_runs(cli_in_process):
    proc = cli_in_process("status")
    assert proc.returncode == 0
    assert "no runs under" in proc.stdout
    assert json.loads(cli_in_process("status", "--json").stdout)["runs"] == []


def test_status_shows_a_live_run_and_a_stale_one(cli, root):
    live = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[])
    try:
        live.log_metrics({"step": 4, "total_steps": 10, "steps_per_sec": 2.0, "losses": {"total": 1.0}})
        live.flush()
        stale = root / "f2" / "20200101-000000-abcdef"  # a writer that died without closing
        stale.mkdir(parents=True)
        (stale / "run.json").write_text(json.dumps({"id": stale.name, "phase": "f2", "status": "running"}))
        proc = cli("status", "--json", timeout=120)
        runs = {r["id"]: r for r in json.loads(proc.stdout)["runs"]}
        assert runs[live.dir.name]["status"] == "running"  # this test process holds the lock
        assert runs[live.dir.name]["eta_s"] == pytest.approx(3.0)
        assert runs[stale.name]["status"] == "stale"
    finally:
        live.close("finished", 0)


# --- logs ---------------------------------------------------------------------------------------------


def test_logs_prints_stdout_log(cli_in_process, two_runs):
    first, _ = two_runs
    proc = cli_in_process("logs", first.name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (first / "stdout.log").read_text()
    assert proc.stdout.splitlines()[-1] == "step 3/10 loss 1.000"
    tail = cli_in_process("logs", "-n", "2", first.name)
    assert tail.stdout.splitlines() == ["step 2/10 loss 1.500", "step 3/10 loss 1.000"]
    events = cli_in_process("logs", "--events", first.name)
    assert [json.loads(x)["kind"] for x in events.stdout.splitlines()][-1] == "end"


def test_logs_follow_on_a_finished_run_returns(cli_in_process, two_runs):
    first, _ = two_runs
    proc = cli_in_process("logs", "-f", first.name)
    assert proc.returncode == 0
    assert proc.stdout == (first / "stdout.log").read_text()


def test_logs_follow_on_a_dead_run_with_a_partial_last_line_returns(cli_in_process, two_runs):
    first, _ = two_runs
    with open(first / "stdout.log", "a") as fh:
        fh.write("step 4/10 lo")  # the writer was killed mid-line
    proc = cli_in_process("logs", "-f", first.name)
    assert proc.returncode == 0
    assert proc.stdout.splitlines()[-1] == "step 4/10 lo"


LIVE_WRITER = textwrap.dedent(
    """
    import os, sys, time, pathlib
    from voltx.runs.store import RunWriter
    root, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    w = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[])
    w.stdout("line 0")
    w.flush()
    print(w.dir, flush=True)
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for i in range(1, 6):
        w.stdout(f"line {i}")
        w.flush()
        time.sleep(0.1)
    w.close("finished", 0)
    """
)


def test_logs_follow_a_live_run_until_the_writer_is_gone(root, tmp_path):
    go = tmp_path / "go"
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(root), str(go)], stdout=subprocess.PIPE, text=True)
    follower = None
    try:
        run_dir = Path(writer.stdout.readline().strip())
        assert (run_dir / "run.json").is_file()
        follower = subprocess.Popen(
            [sys.executable, "-m", "voltx", "logs", "-f", run_dir.name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        first = follower.stdout.readline()  # it has read the log so far...
        assert follower.poll() is None  # ...and still follows it: the writer is alive
        go.touch()
        out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert (first + out).splitlines() == [f"line {i}" for i in range(6)]
        assert writer.wait(timeout=30) == 0
    finally:
        for proc in (writer, follower):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_logs_follow_sees_lines_written_just_before_the_writer_exits(root, monkeypatch, capsys):
    """The writer appends its last lines and exits between two polls: they are still printed."""
    import voltx.runs.lock
    from voltx.cli import logs

    w = make_run(root, "translator", "finished", 0, steps=1)
    stdout_log = w.dir / "stdout.log"
    calls = []

    def writer_alive(run_dir):
        calls.append(run_dir)
        if len(calls) == 1:
            return True
        with open(stdout_log, "a") as fh:  # the last words, then the writer is gone
            fh.write("last line\n")
        return False

    monkeypatch.setattr(voltx.runs.lock, "writer_alive", writer_alive)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    args = argparse.Namespace(run=str(w.dir), follow=True, events=False, lines=0, runs_dir=str(root))
    assert logs.run(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "last line"
    assert len(calls) == 2


# --- report -------------------------------------------------------------------------------------------


def test_report_json_shows_deliverables_and_evaluations(cli_in_process, two_runs):
    first, _ = two_runs
    proc = cli_in_process("report", first.name, "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["phase"] == "translator" and r["status"] == "finished" and r["exit_code"] == 0
    assert r["steps"] == 3
    assert r["final_losses"] == {"total": 1.0, "role": pytest.approx(0.5 / 3)}
    assert r["evaluations"] == {"encoder.retrieval_top1": 0.55, "decoder.bleu": 0.2}
    verdicts = {d["metric"]: d for d in r["deliverables"]}
    assert verdicts["encoder.retrieval_top1"]["passed"] is True
    assert verdicts["decoder.bleu"]["passed"] is False
    assert verdicts["decoder.bleu"]["threshold"] == 0.3 and verdicts["decoder.bleu"]["op"] == ">="
    assert r["alerts"] == [{"rule": "loss-spike", "step": 2, "message": "loss jumped 5x"}]
    assert r["duration_s"] is not None and r["duration_s"] >= 0
    assert r["skipped"] == {"metrics.jsonl": {"count": 0, "lines": []}, "events.jsonl": {"count": 0, "lines": []}}
    assert r["skipped_summary"] == []


def test_report_plain_shows_pass_and_fail(cli_in_process, two_runs):
    first, _ = two_runs
    proc = cli_in_process("report", first.name, env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and "FAIL" in proc.stdout
    assert "encoder.retrieval_top1" in proc.stdout and "0.5500" in proc.stdout
    assert "loss-spike" in proc.stdout
    assert "\x1b[" not in proc.stdout


def test_report_shows_each_verdict_beside_its_baseline_ablation_and_margin(cli_in_process, root):
    """A run judged with baselines shows them (and why the verdict failed); verdicts of runs from
    before baselines still show, with the columns they lack as "—"."""
    w = make_run(root, "translator", "finished", 0, judged=True)
    r = json.loads(cli_in_process("report", w.dir.name, "--json").stdout)
    verdicts = {d["metric"]: d for d in r["deliverables"]}
    judged = verdicts["encoder.role_acc"]
    assert judged["passed"] is False and judged["value"] == 0.9 and judged["threshold"] == 0.85
    assert (judged["baseline_metric"], judged["baseline"], judged["margin"]) == ("encoder.role_majority", 0.88, 0.05)
    assert judged["baselines"] == {"encoder.role_majority": 0.88} and judged["ablations"] == {"encoder.role_untrained": 0.12}
    assert judged["reason"] == "0.9 does not beat the baseline encoder.role_majority = 0.88 by more than 0.05"
    old = verdicts["decoder.bleu"]
    assert old["baseline"] is None and old["baselines"] is None and old["reason"] is None and old["margin"] is None
    proc = cli_in_process("report", w.dir.name, env={"COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "encoder.role_acc" in line and "FAIL" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[:8] == ["encoder.role_acc", "0.9000", ">= 0.85", "encoder.role_majority = 0.88", "0.05",
                         "encoder.role_untrained = 0.12", "FAIL", judged["reason"]]
    old_row = next(line for line in proc.stdout.splitlines() if "decoder.bleu" in line and "FAIL" in line)
    assert [c.strip() for c in old_row.split("│")[1:-1]][3:8] == ["—", "—", "—", "FAIL", "—"]


def test_report_lists_the_deliverables_where_their_table_does_not_fit(cli_in_process, root):
    """Piped or in an 80-column terminal the nine columns squeezed metric names and numbers into
    fragments a few letters wide: there each deliverable is a block, every name and number whole;
    with room, the table stays."""
    w = make_run(root, "translator", "finished", 0, judged=True)
    reason = "0.9 does not beat the baseline encoder.role_majority = 0.88 by more than 0.05"
    narrow = cli_in_process("report", w.dir.name, env={"COLUMNS": "80"}).stdout
    lines = narrow.splitlines()
    assert max(map(len, lines)) <= 80 and "┃ baseline" not in narrow
    at = lines.index("FAIL encoder.role_acc = 0.9000  (target >= 0.85)")
    block = lines[at + 1 : at + 7]
    assert [ln.split(":", 1)[0].strip() for ln in block if ":" in ln.split("=")[0]] == [
        "baseline (strongest)", "margin", "ablation", "why not", "source"]
    assert block[0].split(":", 1)[1].strip() == "encoder.role_majority = 0.88"
    assert block[2].split(":", 1)[1].strip() == "encoder.role_untrained = 0.12"
    why = " ".join(ln.split(":", 1)[1].strip() if ln.lstrip().startswith("why not:") else ln.strip() for ln in block[3:5])
    assert why == reason and block[4].startswith(" " * 10)  # a sentence wraps under its value, indented
    assert "PASS encoder.retrieval_top1 = 0.5500  (target >= 0.5)" in lines
    wide = cli_in_process("report", w.dir.name, env={"COLUMNS": "250"}).stdout
    assert "┃ baseline (strongest) " in wide and any(ln.startswith("│ encoder.role_acc ") for ln in wide.splitlines())


def test_report_latest(cli_in_process, two_runs):
    _, second = two_runs
    r = json.loads(cli_in_process("report", "latest", "--json").stdout)
    assert r["run"] == str(second)
    assert r["status"] == "preempted" and r["exit_code"] == 75 and r["message"] == "stopped by SIGTERM"


def test_report_without_verdicts_says_why_by_the_runs_status(cli_in_process, root):
    """A live run is not judged yet; a finished one without deliverables (a chain) is not "not finished";
    a stopped one names how to continue it."""
    def bare(phase: str):
        w = RunWriter.create(root, phase, config_toml="", overrides=[], preset=None, argv=["voltx", "run", phase])
        w.update_manifest(total_steps=10)
        w.log_metrics({"step": 4, "stage": "s", "losses": {"total": 0.5}})
        w.flush()  # the live one's records are read while it is open
        return w

    live, done, stopped = bare("translator"), bare("curriculum"), bare("f2")
    done.close("finished", 0, "done")
    stopped.close("preempted", 75, "stopped by SIGTERM")
    said = {w: cli_in_process("report", w.dir.name, env={"COLUMNS": "300"}).stdout for w in (live, done, stopped)}
    assert "steps: 4/10" in said[live] and "latest losses: total 0.5000" in said[live] and "still running" in said[live]
    assert "final losses" in said[done] and "deliverables: none (phase curriculum declares no deliverables; each run it started has its own report)" in said[done] and "not finished" not in said[done]
    assert f"voltx run f2 --resume {stopped.dir}" in said[stopped] and "not judged (the run is preempted" in said[stopped]
    live.close("finished", 0, "done")


def test_report_with_nan_values_does_not_crash(cli_in_process, root):
    w = make_run(root, "translator", "diverged", 80, steps=1, nan_eval=True)
    w2 = RunWriter.resume(w.dir, [])
    w2.log_metrics({"step": 2, "losses": {"total": float("nan")}})
    w2.event("deliverable", metric="decoder.perplexity", op="<=", threshold=None, value=None, passed=False)
    w2.close("diverged", 80, "loss is NaN")
    proc = cli_in_process("report", w.dir.name, env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    assert "n/a" in proc.stdout
    r = json.loads(cli_in_process("report", w.dir.name, "--json").stdout)
    assert r["evaluations"]["decoder.perplexity"] is None


@pytest.mark.parametrize("command", [["logs"], ["logs", "-f"], ["report"], ["report", "--json"]])
def test_missing_run_exits_66_with_a_clear_message(cli_in_process, two_runs, command):
    proc = cli_in_process(*command, "nosuchrun")
    assert proc.returncode == EXIT_NO_INPUT
    assert "no run matches 'nosuchrun'" in proc.stderr
    no_traceback(proc)


def test_latest_without_runs_exits_66(cli_in_process):
    proc = cli_in_process("report", "latest")
    assert proc.returncode == EXIT_NO_INPUT
    assert "no runs under" in proc.stderr
    no_traceback(proc)


def test_corrupt_metrics_do_not_crash_status_or_report(cli_in_process, two_runs):
    first, _ = two_runs
    metrics = first / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines.insert(1, "{not json")
    lines.insert(3, "\x00\x00\x00")
    metrics.write_text("\n".join(lines) + '\n{"step": 9, "losses": {"to')  # plus a truncated tail
    with open(first / "events.jsonl", "a") as fh:
        fh.write('["not", "an", "object"]\n{"kind": "evalu')
    proc = cli_in_process("status", "--json")
    assert proc.returncode == 0, proc.stderr
    runs = {r["id"]: r for r in json.loads(proc.stdout)["runs"]}
    assert runs[first.name]["step"] == 3
    proc = cli_in_process("report", first.name, "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["steps"] == 3
    # the run's writer is gone: the half-written last lines will never be finished, so they count
    assert [x["line"] for x in r["skipped"]["metrics.jsonl"]["lines"]] == [2, 4, 6]
    assert [x["line"] for x in r["skipped"]["events.jsonl"]["lines"]] == [8, 9]
    assert len(r["deliverables"]) == 2
    plain = cli_in_process("report", first.name)
    assert plain.returncode == 0
    no_traceback(plain)
    assert cli_in_process("status").returncode == 0


def test_newer_run_format_is_listed_not_fatal(cli_in_process, root, two_runs):
    d = root / "translator" / "20990101-000000-ffffff"
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"format_version": 99, "id": d.name, "phase": "translator", "status": "finished"}))
    proc = cli_in_process("status", "--json")
    assert proc.returncode == 0, proc.stderr
    runs = {r["id"]: r for r in json.loads(proc.stdout)["runs"]}
    assert any("newer voltx" in p for p in runs[d.name]["problems"])
    assert cli_in_process("status").returncode == 0


def test_status_uses_the_configured_runs_dir(cli_in_process, tmp_path, monkeypatch):
    monkeypatch.delenv("VOLTX_RUNS_DIR")
    w = make_run(tmp_path / "store", "translator", "finished", 0, steps=1)
    (tmp_path / "training_config.toml").write_text('[paths]\nruns_dir = "store"\n')  # the cwd is tmp_path
    out = json.loads(cli_in_process("status", "--json").stdout)
    assert out["root"] == "store" and [r["id"] for r in out["runs"]] == [w.dir.name]


@pytest.mark.parametrize("text", ["[paths\n", "paths = 3\n", "[paths]\nruns_dir = 3\n"])
def test_status_with_a_broken_config_in_the_cwd_still_reads_runs(cli_in_process, tmp_path, monkeypatch, two_runs, text):
    monkeypatch.delenv("VOLTX_RUNS_DIR")  # the runs are in ./runs, the default
    (tmp_path / "training_config.toml").write_text(text)
    proc = cli_in_process("status", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["runs"]) == 2


# --- damaged stores: records are validated, never shown as something they are not ------------------


def damage(run_dir: Path) -> None:
    """What a crash and a foreign writer (a plugin, Python's json.dumps) leave in a run's files."""
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('{"step": "abc", "stage": "encoder", "losses": {"total": 0.5}}\n')  # line 4
        fh.write('{"step": 4, "losses": {"total": NaN, "role": 0.1}, "lr": Infinity, "plugin_metric": 7}\n')
        fh.write('{"stage": "encoder", "losses": {"total": 0.4}}\n')  # no step
        fh.write('[1, 2, 3]\n')
        fh.write('{"step": 5, "losses": {"tot')  # the crash: a cut last line
    with open(run_dir / "events.jsonl", "a") as fh:
        verdict = {"time": 1.0, "kind": "deliverable", "metric": "decoder.exact", "op": ">=", "threshold": 0.3, "value": 0.1, "passed": "maybe"}
        fh.write(json.dumps(verdict) + "\n")  # line 8
        fh.write(json.dumps({"time": 1.0, "kind": "alert", "rule": "custom", "step": 3, "message": "[bold red]x[/] and [codebook] gone"}) + "\n")
        fh.write(json.dumps({"time": 1.0, "kind": "alert", "rule": "custom", "step": "three", "message": "wrong step type"}) + "\n")


def test_report_skips_malformed_records_and_says_how_many(cli_in_process, root):
    run_dir = make_run(root, "translator", "failed", 1).dir
    damage(run_dir)
    r = json.loads(cli_in_process("report", run_dir.name, "--json").stdout)
    assert {d["metric"]: d["passed"] for d in r["deliverables"]} == {"encoder.retrieval_top1": True, "decoder.bleu": False}
    assert r["steps"] == 4 and r["final_losses"] == {"total": None, "role": 0.1}  # NaN is null, as the writer writes it
    assert [a["step"] for a in r["alerts"]] == [2, 3]
    assert r["skipped"]["metrics.jsonl"]["count"] == 4
    assert r["skipped"]["events.jsonl"]["lines"] == [
        {"line": 8, "reason": "field 'passed' expected true or false, got 'maybe'"},
        {"line": 10, "reason": "field 'step' expected an integer, got 'three'"},
    ]
    proc = cli_in_process("report", run_dir.name, env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    no_traceback(proc)
    out = proc.stdout
    assert "decoder.exact" not in out and out.count("PASS") == 1  # "maybe" is not a pass
    assert "alert custom at step 3: [bold red]x[/] and [codebook] gone" in out  # literal text, not markup
    assert "skipped 4 malformed lines in metrics.jsonl (first: line 4: field 'step' expected an integer, got 'abc')" in out
    assert "skipped 2 malformed lines in events.jsonl (first: line 8: field 'passed' expected true or false, got 'maybe')" in out


def test_status_shows_the_last_well_formed_step(cli_in_process, root):
    run_dir = make_run(root, "translator", "failed", 1).dir
    damage(run_dir)
    with open(run_dir / "metrics.jsonl", "a") as fh:
        fh.write('\n{"step": 9, "losses": {"total": "low"}}\n')  # after the cut line: still not a record
    (r,) = json.loads(cli_in_process("status", "--json").stdout)["runs"]
    assert r["step"] == 4 and r["losses"] == {"role": 0.1}


def test_report_on_a_live_run_does_not_count_the_line_being_written(root):
    from voltx.cli.report import build_report

    w = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[])
    try:
        w.log_metrics({"step": 1, "losses": {"total": 1.0}})
        w.flush()
        with open(w.paths.metrics, "a") as fh:
            fh.write('{"step": 2, "losses": {"to')
        r = build_report(w.dir)
        assert r["status"] == "running" and r["steps"] == 1 and r["skipped_summary"] == []
    finally:
        w.close("finished", 0)
    r = build_report(w.dir)  # the writer is gone: that line will never be finished
    assert r["skipped"]["metrics.jsonl"]["lines"] == [{"line": 2, "reason": "incomplete: the file ends mid-line (the writer stopped while writing it)"}]


# --- a damaged run.json: listed and reported as damaged, never crashed on or shown as what it is not -----


def damage_manifest(run_dir: Path, text: str | None = None, **fields) -> None:
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest.update(fields)
    (run_dir / "run.json").write_text(text if text is not None else json.dumps(manifest, indent=1))


def test_status_and_report_show_a_damaged_manifest_as_damaged(cli_in_process, root):
    exit_x = make_run(root, "translator", "failed", 1).dir
    damage_manifest(exit_x, exit_code="x")
    cut = make_run(root, "f2", "preempted", 75).dir
    damage_manifest(cut, text=(cut / "run.json").read_text()[:50])
    listed = make_run(root, "f2", "finished", 0).dir
    damage_manifest(listed, text="[1, 2]")
    live = RunWriter.create(root, "translator", config_toml="", overrides=[], preset=None, argv=[])
    try:
        live.log_metrics({"step": 4, "stage": "encoder", "losses": {"total": 1.0}, "steps_per_sec": 2.0})
        live.flush()
        damage_manifest(live.dir, total_steps="many")
        proc = cli_in_process("status", "--json")  # the original: TypeError (the ETA from "many"), a traceback
        assert proc.returncode == 0, proc.stderr
        runs = {r["id"]: r for r in json.loads(proc.stdout)["runs"]}
        plain = cli_in_process("status", env={"COLUMNS": "250"})
    finally:
        live.close("finished", 0)
    expected = {
        exit_x.name: "run.json: field 'exit_code' expected an integer, got 'x'",
        cut.name: "run.json: not valid JSON (line 3 column 8: Unterminated string starting)",
        listed.name: "run.json: expected a JSON object, got a list",
        live.dir.name: "run.json: field 'total_steps' expected an integer, got 'many'",
    }
    assert {name: (r["status"], r["problems"]) for name, r in runs.items()} == {name: ("damaged", [p]) for name, p in expected.items()}
    assert runs[exit_x.name]["exit_code"] is None and runs[exit_x.name]["phase"] == "translator"  # the original: exit code "x"
    assert runs[exit_x.name]["step"] == 3 and runs[exit_x.name]["losses"] == {"total": 1.0, "role": 0.5 / 3}
    assert plain.returncode == 0 and "Traceback" not in plain.stderr
    for name, problem in expected.items():
        assert f"damaged ({problem})" in next(line for line in plain.stdout.splitlines() if line.startswith(name))

    report = json.loads(cli_in_process("report", exit_x.name, "--json").stdout)
    assert (report["status"], report["problem"], report["exit_code"], report["phase"]) == ("damaged", expected[exit_x.name], None, "translator")
    assert {d["metric"]: d["passed"] for d in report["deliverables"]} == {"encoder.retrieval_top1": True, "decoder.bleu": False}
    proc = cli_in_process("report", cut.name, env={"COLUMNS": "200"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"status: damaged ({expected[cut.name]})" in proc.stdout and "steps: 3" in proc.stdout


def test_run_resume_of_a_damaged_manifest_exits_65_naming_the_field(cli_in_process, root):
    run_dir = make_run(root, "translator", "preempted", 75).dir
    damage_manifest(run_dir, attempts="1")
    before = (run_dir / "run.json").read_text()
    proc = cli_in_process("run", "translator", "--resume", str(run_dir))
    assert proc.returncode == 65, proc.stderr  # EX_DATAERR; the original resumed it and crashed on "1".append
    no_traceback(proc)
    assert f"{run_dir / 'run.json'}: field 'attempts' expected a list of objects, got '1'. voltx will not resume it" in proc.stderr
    assert (run_dir / "run.json").read_text() == before
