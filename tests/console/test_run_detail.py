"""Run detail: every tab on a full run, a run with alerts, no telemetry, a corrupt tail, a newer format."""

from __future__ import annotations

import json

import pytest
from pilot_support import anyio_backend, root, settle  # noqa: F401  (fixtures)
from run_factory import append_steps, hold_lock, make_run

from voltx.console.app import VoltxConsole
from voltx.console.testing import drawn_detail, until
from voltx.console.screens.run_detail import TABS, RunDetailScreen
from voltx.console.widgets.scoreboard import COLUMNS

pytestmark = pytest.mark.anyio
SIZE = (100, 32)


async def open_detail(pilot) -> RunDetailScreen:
    """The detail screen once it is mounted and its first read is drawn: waited for, not a fixed
    pause (a loaded machine takes longer to push and mount it)."""
    await drawn_detail(pilot, lambda s: s.query("#detail-head"))
    await settle(pilot, 0.1)
    screen = pilot.app.screen
    assert isinstance(screen, RunDetailScreen) and screen.redraws
    return screen


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_every_tab_of_a_finished_run_with_alerts(root):
    run = make_run(root, alerts=3)
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        assert screen.query_one("#plot-loss").points == 150  # 3 terms x 50 steps
        assert "3 alert(s)" in text(screen, "#detail-head")
        for n, (tab, _) in enumerate(TABS, 1):
            await pilot.press(str(n))
            await pilot.pause(0.05)
            assert screen.query_one("#tabs").active == tab
        assert screen.query_one("#plot-lr").points == 50 and screen.query_one("#plot-speed").points == 50
        board = screen.query_one("#scoreboard")
        rows = {board.get_row(k)[0]: dict(zip(COLUMNS, map(str, board.get_row(k)))) for k in board.rows}
        assert "PASS" in rows["encoder/accuracy"]["verdict"] and rows["encoder/accuracy"]["trend"] == "↑"  # 0.75 then 0.9
        assert "FAIL" in rows["encoder/recall"]["verdict"]
        assert "not evaluated" in rows["encoder/ppl"]["verdict"]
        # beside its value and target: the strongest baseline with its metric, the margin, the ablation, why it failed
        recall = rows["encoder/recall"]
        assert (recall["value"], recall["target"], recall["baseline"], recall["margin"], recall["ablation"], recall["why not"]) == (
            "0.7", ">= 0.75", "encoder/recall_majority = 0.72", "0", "encoder/recall_untrained = 0.1",
            "0.7 does not meet the threshold >= 0.75")
        # a verdict from a run before baselines: the columns it lacks read "—"
        assert [rows["encoder/accuracy"][c] for c in ("baseline", "margin", "ablation", "why not")] == ["—", "—", "—", ""]
        assert [rows["encoder/ppl"][c] for c in ("baseline", "margin", "ablation", "why not")] == ["—"] * 4
        rar = text(screen, "#rar-panel")
        assert "Iterations per query (64 queries)" in rar and "S15" in rar and "Certainty γ per slot" in rar
        assert screen.query_one("#alerts-table").row_count == 3
        assert "seed = 0" in screen.view.config_text and screen.query_one("#config-text").visual is not None
        ckpts = screen.query_one("#checkpoints-table")
        assert [ckpts.get_row_at(i)[0] for i in range(ckpts.row_count)] == ["50", "25"]  # the .tmp one is not listed
        assert screen.query_one("#log-tail").line_count == 22
        await pilot.press("escape")
        assert type(app.screen).__name__ == "RunsScreen"


async def test_run_without_telemetry_shows_empty_states(root):
    # a phase whose plugin is not installed here: it declares no deliverables either
    run = make_run(root, "uninstalled", status="failed", system=False, rar=False, deliverables=False, steps=0)
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        assert "no metrics logged yet" in screen.query_one("#plot-loss").text() or screen.query_one("#plot-loss").points == 0
        for key, widget in (("3", "#verdicts-empty"), ("5", "#alerts-empty"), ("7", "#checkpoints-empty")):
            await pilot.press(key)
            await pilot.pause(0.05)
            assert screen.query_one(widget).display
        await pilot.press("4")
        await pilot.pause(0.05)
        assert "No RAR telemetry" in text(screen, "#rar-panel")


async def test_corrupt_tail_is_counted_and_half_line_waits(root):
    run = make_run(root, corrupt_tail=True)
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        assert len(screen.view.series) == 50  # the corrupt line and the half line are not points
        assert screen.view.series.corrupt_lines == (51,) and screen.view.series.truncated_tail
        assert "2 corrupt line(s) skipped" in text(screen, "#detail-head")


async def test_newer_format_is_read_only(root):
    run = make_run(root, format_version=99)
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        assert "newer format: upgrade voltx (read-only)" in text(screen, "#detail-head")
        called = []
        import voltx.runs.launch as launch

        pilot.app.screen  # noqa: B018
        original = launch.resume_run
        launch.resume_run = lambda *a, **k: called.append(a)
        try:
            await pilot.press("R")
        finally:
            launch.resume_run = original
        assert called == []


async def test_live_run_follows_new_steps(root):
    run = make_run(root, status="running", steps=10)
    with hold_lock(run):
        app = VoltxConsole([root], run=run, poll_s=0.1)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_detail(pilot)
            assert screen.view.status == "running"
            before = screen.redraws
            append_steps(run, 11, 30, total=20)
            with open(run / "stdout.log", "a") as fh:
                fh.write("fresh line\n")
            await settle(pilot, 0.6)
            assert len(screen.view.series) == 40 and screen.redraws > before
            assert screen.view.log[-1] == "fresh line"


async def test_events_with_wrong_types_and_markup_in_messages_do_not_crash(root):
    """events.jsonl and run.json are written by phases and plugins: any JSON object may come."""
    import json

    run = make_run(root, status="failed", rar=False, alerts=0)
    manifest = json.loads((run / "run.json").read_text())
    manifest["message"] = "unknown key [codebook] in config; see [/] and [red"
    (run / "run.json").write_text(json.dumps(manifest))
    with open(run / "events.jsonl", "a") as fh:
        for ev in (
            {"time": 1, "kind": "alert", "step": "[b]", "severity": "[/]", "rule": "[red", "message": "wrong step type"},  # skipped
            {"time": 1, "kind": "alert", "step": 4, "severity": "[/]", "rule": "[red", "message": "loss [/] spiked"},
            {"time": 2, "kind": "rar", "step": 5, "iterations": 7, "slot_converged": "abc", "gamma": None},
            {"time": 3, "kind": "rar", "step": 6, "iterations": [1, 10**12, float("nan")], "slot_converged": [2, "x"],
             "gamma": [0.5] * 16},
        ):
            fh.write(json.dumps(ev).replace("NaN", "1e999") + "\n")
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        assert "[codebook]" in text(screen, "#detail-head")
        for n in range(1, len(TABS) + 1):
            await pilot.press(str(n))
            await pilot.pause(0.1)
        assert isinstance(app.screen, RunDetailScreen)
        alerts = screen.query_one("#alerts-table")
        assert alerts.row_count == 1 and "loss [/] spiked" in str(alerts.get_row_at(0)[3])
        assert [str(c) for c in alerts.get_row_at(0)[:3]] == ["4", "[/]", "[red"]
        assert screen.view.corrupt_count == 1  # the alert whose step is "[b]" is not a record: counted, not shown
        rar = text(screen, "#rar-panel")
        assert "step 6" in rar and "Certainty γ per slot" in rar


def test_only_declared_deliverables_are_pending():
    from voltx.console.run_data import Verdict
    from voltx.console.widgets.scoreboard import verdict_text

    assert verdict_text(Verdict("encoder/valid_loss", history=(4.0, 3.8))) == "-"  # evaluated only: no target, never a verdict
    assert "pending" in verdict_text(Verdict("encoder/acc", op=">=", threshold=0.9))
    assert "PASS" in verdict_text(Verdict("encoder/acc", op=">=", threshold=0.9, value=0.95, passed=True))
    assert "not evaluated" in verdict_text(Verdict("encoder/acc", op=">=", threshold=0.9, passed=False))


async def test_header_skips_loss_terms_the_latest_step_did_not_log(root):
    """A two-stage phase: the decoder stage logs no contrastive/role terms; they are not shown as "-"."""
    import json

    run = make_run(root, status="finished")
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 51, "stage": "decoder", "losses": {"loss": 0.5}}) + "\n")
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_detail(pilot)
        head = text(screen, "#detail-head")
        assert "loss=0.5" in head and "=-" not in head and "loss_role" not in head


async def test_screen_swaps_whole_snapshots_on_the_ui_thread(root):
    """The worker hands over frozen views; every redraw sees one whole view (all columns as long
    as the step column, never a half-appended one) and happens on the UI thread."""
    import threading

    run = make_run(root, status="running", steps=10)
    ui = threading.get_ident()
    seen = []
    with hold_lock(run):
        app = VoltxConsole([root], run=run, poll_s=0.02)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_detail(pilot)
            real = screen.redraw

            def checked_redraw():
                view = screen.view
                seen.append((threading.get_ident(), len(view.series), {len(c) for c in view.series.columns.values()}))
                real()
                assert screen.view is view  # nothing swapped it mid-draw

            screen.redraw = checked_redraw
            stop = threading.Event()

            def writer():
                step = 11
                while not stop.wait(0.002):  # a breath between appends: a loaded machine still runs the UI loop
                    append_steps(run, step, 7, total=10**6)
                    step += 7

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                await settle(pilot, 0.8)
            finally:
                stop.set()
                thread.join()
    assert len(seen) > 3
    assert all(tid == ui and lengths == {n} for tid, n, lengths in seen)
    assert [n for _, n, _ in seen] == sorted(n for _, n, _ in seen)  # views only move forward


def test_rar_panel_shows_the_share_of_converged_queries_when_the_event_has_it():
    from voltx.console.widgets.rar_panel import render_rar

    event = {"step": 3, "iterations": [30, 2], "slot_converged": [0.5] * 16, "gamma": [0.2] * 16}
    assert "Converged queries" not in render_rar(event, None).plain  # F1's events: no frame figure
    assert "Converged queries (every slot frozen): 25.0%" in render_rar({**event, "frame_converged": 0.25}, None).plain
    shown = render_rar({**event, "frame_converged": 0.25, "converged_correct": 0.125}, None).plain
    assert "Converged and answered right: 12.5%" in shown


async def test_the_loss_and_lr_tabs_draw_a_runs_stages_apart(root):
    """Translator's encoder then decoder, cognate's base then specialists: each stage's curve on its
    own, where it begins marked and named (the stage every step record names)."""
    run = make_run(root, steps=40)
    metrics = run / "metrics.jsonl"
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    for rec in records[25:]:
        rec["stage"] = "decoder"
    metrics.write_text("".join(json.dumps(rec) + "\n" for rec in records))
    app = VoltxConsole([root], run=run)
    async with app.run_test(size=SIZE) as pilot:
        screen = await drawn_detail(pilot, lambda s: s.query_one("#plot-loss").points, "the loss curve")
        plot = screen.query_one("#plot-loss")
        assert plot.stages == (("encoder", 1.0), ("decoder", 26.0))
        assert plot.text().split("\n")[1].split() == ["encoder", "┊decoder"]
        await pilot.press("2")
        await until(pilot, lambda: screen.query_one("#plot-lr").points, "the lr curve")
        assert screen.query_one("#plot-lr").stages == plot.stages


async def test_the_header_eta_is_the_runs_screens(root):
    """One rule: a running run whose loop re-planned its total (the records say 60, run.json still
    20) shows the same total and ETA in the run header as on the runs screen."""
    from voltx.formatting import fmt_duration
    from voltx.runs.store import summarize

    run = make_run(root, status="running", steps=10)
    append_steps(run, 11, 5, total=60)
    with hold_lock(run):
        listed = summarize(run)  # what the runs screen's row shows (voltx.console.data.RunIndex)
        assert listed.total_steps == 60 and listed.eta_s
        app = VoltxConsole([root], run=run)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_detail(pilot)
            head = text(screen, "#detail-head")
            assert "step 15/60" in head and f"ETA {fmt_duration(listed.eta_s)}" in head, head


def test_an_eta_is_never_negative_and_only_for_a_running_run():
    from voltx.runs.store import eta_seconds

    assert eta_seconds("running", 120, 100, 2.0) == 0.0  # past its planned total
    assert eta_seconds("running", 50, 100, 2.0) == 25.0
    assert eta_seconds("finished", 50, 100, 2.0) is None and eta_seconds("running", 50, None, 2.0) is None
    assert eta_seconds("running", 50, 100, 0.0) is None and eta_seconds("running", None, 100, 2.0) is None
