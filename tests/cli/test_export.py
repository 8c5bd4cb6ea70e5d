"""``voltx export``: CSV/JSONL of the kept steps (resume-superseded ones dropped), atomic
outputs, TensorBoard through tensorboardX (the tracker replays: tests/plugins/test_tracker_sinks.py),
clear errors for bad input."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path

import pytest

from voltx.errors import CantCreateError, MissingInputError, UsageError
from voltx.runs.export import export_deliverables, export_run, kept_records
from voltx.runs.jsonl import drop_superseded


def make_run(root: Path) -> Path:
    """Attempt 1 logs steps 1-5, is preempted after a checkpoint at 3; attempt 2 logs 4-6
    with an extra loss term. One corrupt line and a half-written last line."""
    run_dir = root / "toy" / "20250101-000000-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"id": run_dir.name, "phase": "toy", "status": "finished"}))
    lines = [json.dumps({"step": s, "time": 100.0 + s, "attempt": 1, "stage": "fit", "losses": {"loss": 1.0 / s}, "lr": 0.1}) for s in range(1, 6)]
    lines.append("{corrupt")
    lines += [json.dumps({"step": s, "time": 200.0 + s, "attempt": 2, "stage": "fit", "losses": {"loss": 0.5 / s, "aux": 2.0}, "lr": 0.05, "note": "text", "flag": True}) for s in range(4, 7)]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 7, "ti')
    return run_dir


def test_csv_one_row_per_kept_step_with_the_union_of_numeric_columns(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    done = export_run(run_dir, "csv", tmp_path / "out" / "m.csv")
    out = done.path
    assert out == tmp_path / "out" / "m.csv"
    assert done.skipped.count == 2  # the corrupt line and the half-written last one (the writer is gone)
    assert [p.line for p in done.skipped.first] == [6, 10]
    rows = list(csv.DictReader(out.open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["attempt"] for r in rows] == ["1", "1", "1", "2", "2", "2"]  # 4 and 5 re-logged by attempt 2
    header = list(rows[0])
    assert header[:4] == ["step", "time", "attempt", "stage"]
    assert set(header) == {"step", "time", "attempt", "stage", "losses/loss", "losses/aux", "lr"}  # no text, no bool
    assert rows[0]["losses/aux"] == "" and rows[5]["losses/aux"] == "2.0"
    assert float(rows[3]["losses/loss"]) == 0.5 / 4
    assert [p.name for p in out.parent.iterdir()] == ["m.csv"]  # no temp file left


def test_jsonl_keeps_the_records_drop_superseded_keeps(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    out = export_run(run_dir, "jsonl", tmp_path / "m.jsonl").path
    recs = [json.loads(l) for l in out.read_text().splitlines()]
    assert [(r["step"], r["attempt"]) for r in recs] == [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 2)]


def test_streamed_rule_equals_drop_superseded(tmp_path):
    from voltx.runs.jsonl import SkippedLines

    rng = random.Random(0)
    path = tmp_path / "m.jsonl"
    for _ in range(500):
        recs = [{"i": i} if rng.random() < 0.2 else {"step": rng.randint(0, 8), "i": i} for i in range(rng.randint(0, 15))]
        path.write_text("".join(json.dumps(r) + "\n" for r in recs))
        skipped = SkippedLines(path.name)
        kept = [(r.step, r.extra["i"]) for r in kept_records(path, skipped)]
        steps = [r for r in recs if "step" in r]  # a line without a step is not a step record: skipped
        assert kept == [(r["step"], r["i"]) for r in drop_superseded(steps)], recs
        assert skipped.count == len(recs) - len(steps)


def test_default_output_is_named_after_the_run_in_the_current_directory(tmp_path):
    out = export_run(make_run(tmp_path / "runs"), "csv").path
    assert out == Path.cwd() / "toy-20250101-000000-abcdef.csv" and out.exists()
    again = export_run(out.parent / "runs" / "toy" / "20250101-000000-abcdef", "csv").path  # replaces atomically
    assert again == out


def test_tensorboard_through_tensorboardx(tmp_path):
    run_dir = make_run(tmp_path / "runs")  # no events.jsonl: the steps alone are replayed
    out = export_run(run_dir, "tensorboard", tmp_path / "tb").path
    assert [p.name.startswith("events.out.tfevents") for p in out.iterdir()] == [True]
    assert not list(tmp_path.glob(".tb.tmp-*"))  # written under a temporary name, then renamed


def test_a_tracker_whose_extra_is_missing_says_the_pip_line(tmp_path, monkeypatch):
    from voltx.errors import PreflightError
    from voltx.runs import sink_feed

    run_dir = make_run(tmp_path / "runs")
    real = importlib.util.find_spec
    monkeypatch.setattr(sink_feed.importlib.util, "find_spec", lambda name, *a: None if name == "tensorboardX" else real(name, *a))
    with pytest.raises(PreflightError, match=r'exporting to tensorboard needs tensorboardX, which is not installed: pip install "voltx\[tensorboard\]"'):
        export_run(run_dir, "tensorboard", tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


def test_bad_input_is_a_clear_error(tmp_path):
    run_dir = make_run(tmp_path / "runs")
    with pytest.raises(UsageError, match="choose one of csv, jsonl, tensorboard, wandb, mlflow"):
        export_run(run_dir, "parquet")
    with pytest.raises(MissingInputError, match="not a run directory"):
        export_run(tmp_path, "csv")
    (run_dir / "metrics.jsonl").unlink()
    with pytest.raises(MissingInputError, match="logged no steps"):
        export_run(run_dir, "csv")
    run_dir = make_run(tmp_path / "other")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CantCreateError, match="--output"):
        export_run(run_dir, "csv", tmp_path / "a-file" / "m.csv")


def test_cli(tmp_path, cli_in_process):
    make_run(tmp_path / "runs")  # VOLTX_RUNS_DIR points here (tests/conftest.py)
    done = cli_in_process("export", "latest", "--to", "csv", "--output", "x.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exported toy/20250101-000000-abcdef to x.csv" in done.stdout and (tmp_path / "x.csv").exists()
    done = cli_in_process("export", "nope", "--to", "csv", cwd=tmp_path)
    assert done.returncode == 66 and "no run matches 'nope'" in done.stderr and "Traceback" not in done.stderr
    done = cli_in_process("export", "latest", "--to", "xls", cwd=tmp_path)
    assert done.returncode == 64 and "invalid choice" in done.stderr
    done = cli_in_process("export", "latest", "--to", "csv", "--output", "x.csv/inside.csv", cwd=tmp_path)
    assert done.returncode == 73 and "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_malformed_lines_are_not_exported_and_are_counted(tmp_path, cli_in_process):
    """A crash and a foreign writer's lines: no row for a step that is not an integer, NaN as an
    empty cell, unknown fields kept in JSONL, and the command says what it skipped."""
    run_dir = make_run(tmp_path / "runs")
    with open(run_dir / "metrics.jsonl", "a") as fh:  # after make_run's half line: a resumed writer starts a new line
        fh.write('\n{"step": "abc", "time": 300.0, "attempt": 3, "losses": {"loss": 0.1}}\n')  # line 11
        fh.write('{"step": 7, "time": 301.0, "attempt": 3, "losses": {"loss": NaN}, "lr": Infinity, "plugin": {"k": 1}}\n')
        fh.write('{"time": 302.0, "attempt": 3, "losses": {"loss": 0.2}}\n')
        fh.write('{"step": 8, "losses": {"lo')
    done = cli_in_process("export", "latest", "--to", "csv", "--output", "x.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("voltx: skipped 5 malformed lines in metrics.jsonl (first: line 6: not valid JSON "
            "(Expecting property name enclosed in double quotes at column 2))") in done.stdout
    rows = list(csv.DictReader((tmp_path / "x.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert rows[-1]["losses/loss"] == "" and rows[-1]["lr"] == "" and rows[-1]["plugin/k"] == "1"
    done = cli_in_process("export", "latest", "--to", "jsonl", "--output", "x.jsonl", cwd=tmp_path)
    assert "skipped 5 malformed lines" in done.stdout
    recs = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5, 6, 7]
    assert recs[-1] == {"step": 7, "time": 301.0, "attempt": 3, "losses": {"loss": None}, "plugin": {"k": 1}}
    done = export_run(run_dir, "jsonl", tmp_path / "y.jsonl")
    assert [str(p) for p in done.skipped.first][1:] == [
        "line 10: not valid JSON (Invalid control character at column 16)",  # the cut line, once a newline followed it
        "line 11: field 'step' expected an integer, got 'abc'",
        "line 13: field 'step' is missing",
        "line 14: incomplete: the file ends mid-line (the writer stopped while writing it)",
    ]


def test_csv_of_a_live_run_is_one_snapshot_while_the_run_appends(tmp_path, monkeypatch):
    """The CSV reads metrics.jsonl more than once (columns first, then rows): a step the live run
    logs meanwhile must not become a row whose loss terms the header lacks."""
    import voltx.runs.export as exporter
    from voltx.runs.store import RunWriter

    w = RunWriter.create(tmp_path / "runs", "toy", config_toml="", overrides=[], preset=None, argv=["voltx", "run", "toy"])
    try:
        for step in (1, 2, 3):
            w.log_metrics({"step": step, "stage": "fit", "stage_step": step, "total_steps": 10, "epoch": 0, "batch": step,
                           "losses": {"loss": 1.0 / step}, "lr": 0.1, "samples_per_sec": 64.0, "steps_per_sec": 2.0})
        w.flush()
        real, passes = exporter.stream_jsonl, []

        def stream_while_the_run_logs(*args, **kwargs):
            yield from real(*args, **kwargs)
            passes.append(1)
            if len(passes) == 1:  # the run logs its next step, with a new loss term, after the first pass
                w.log_metrics({"step": 4, "stage": "fit", "stage_step": 4, "total_steps": 10, "epoch": 0, "batch": 4,
                               "losses": {"loss": 0.25, "aux": 2.0}, "lr": 0.1, "samples_per_sec": 64.0, "steps_per_sec": 2.0})
                w.flush()

        monkeypatch.setattr(exporter, "stream_jsonl", stream_while_the_run_logs)
        done = export_run(w.dir, "csv", tmp_path / "m.csv")
    finally:
        w.close("finished", 0)
    assert len(passes) >= 2 and w.paths.metrics.read_text().count("\n") == 4  # the run did log step 4 between the passes
    rows = list(csv.DictReader(done.path.open()))
    assert [r["step"] for r in rows] == ["1", "2", "3"]  # the original wrote a 4th row, its losses/aux silently dropped
    assert "losses/aux" not in rows[0] and all(r["losses/loss"] for r in rows)
    assert done.skipped.count == 0


def test_deliverables_beside_their_baselines_as_csv_and_jsonl(tmp_path, cli_in_process):
    """--deliverables: one row per verdict, the strongest baseline and every baseline and ablation
    as columns; a verdict from before baselines has those cells empty."""
    from voltx.plugin_specs import Deliverable

    run_dir = make_run(tmp_path / "runs")
    with pytest.raises(MissingInputError, match="no deliverable verdicts yet"):
        export_deliverables(run_dir, "csv", tmp_path / "none.csv")
    judged = Deliverable("fit/acc", ">", 0.5, "plan", baselines=("fit/majority", "fit/chance"), ablations=("fit/untrained",),
                         margin=0.02).judge({"fit/acc": 0.6, "fit/majority": 0.59, "fit/chance": 0.1, "fit/untrained": 0.2})
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write(json.dumps({"kind": "deliverable", "time": 1.0, "step": 6, **judged}) + "\n")
        fh.write(json.dumps({"kind": "deliverable", "time": 1.0, "step": 6, "metric": "fit/old", "op": "<", "threshold": 1.0,
                             "value": 0.5, "passed": True}) + "\n")
    done = cli_in_process("export", "latest", "--to", "csv", "--deliverables", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "toy-20250101-000000-abcdef-deliverables.csv"
    assert f"exported deliverables of toy/20250101-000000-abcdef to {out}" in done.stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["metric"] for r in rows] == ["fit/acc", "fit/old"]
    new, old = rows
    assert (new["value"], new["threshold"], new["baseline_metric"], new["baseline"], new["margin"], new["passed"]) == (
        "0.6", "0.5", "fit/majority", "0.59", "0.02", "False")
    assert (new["baselines/fit/chance"], new["ablations/fit/untrained"]) == ("0.1", "0.2")
    assert new["reason"] == "0.6 does not beat the baseline fit/majority = 0.59 by more than 0.02"
    assert old["passed"] == "True" and old["baseline"] == old["reason"] == old["ablations/fit/untrained"] == ""
    lines = export_deliverables(run_dir, "jsonl", tmp_path / "v.jsonl").path.read_text().splitlines()
    assert json.loads(lines[0]) == {k: judged[k] for k in json.loads(lines[0])} and json.loads(lines[1])["baselines"] is None
    refused = cli_in_process("export", "latest", "--to", "tensorboard", "--deliverables", cwd=tmp_path)
    assert refused.returncode == 64 and "deliverables export to csv or jsonl" in refused.stderr
