"""Runs screen: listing with every status, filter, sort, marks, help, bad roots, too small."""

from __future__ import annotations

import json
import os

import pytest
from pilot_support import anyio_backend, root, settle  # noqa: F401  (fixtures)
from run_factory import BASE_TIME, hold_lock, make_run, append_steps

from voltx.console.app import VoltxConsole
from voltx.console.screens.runs import RunsScreen

SIZE = (120, 30)
pytestmark = pytest.mark.anyio


def statuses(screen: RunsScreen) -> dict[str, str]:
    return {r.id: r.status for r in screen.index.rows.values()}


async def test_lists_every_status_and_stale_vs_running(root):
    made = {s: make_run(root, "f1" if i % 2 else "f2", status=s, created_at=BASE_TIME + i * 60)
            for i, s in enumerate(["finished", "failed", "preempted", "stale", "diverged", "interrupted", "running"])}
    with hold_lock(made["running"]):
        app = VoltxConsole([root], poll_s=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            assert screen.query_one("#runs").row_count == 7
            assert statuses(screen) == {d.name: s for s, d in made.items()}
            row = screen.index.rows[made["running"]]
            assert row.step == 50 and row.total_steps == 100 and row.eta_s is not None  # running runs get an ETA
            assert row.host == "gpu-box-1" and row.losses["loss_role"] > 0
    # the writer is gone: the next poll shows the run as stale without any file changing
    async with VoltxConsole([root], poll_s=0.1).run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert statuses(pilot.app.screen)[made["running"].name] == "stale"


async def test_live_run_progress_and_new_runs_appear(root):
    run = make_run(root, status="running", steps=10)
    with hold_lock(run):
        app = VoltxConsole([root], poll_s=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.screen.index.rows[run].step == 10
            append_steps(run, 11, 5, total=20)
            other = make_run(root, "f3", created_at=BASE_TIME + 999)
            await settle(pilot, 0.4)
            assert app.screen.index.rows[run].step == 15
            assert other in app.screen.index.rows and app.screen.query_one("#runs").row_count == 2


async def test_filter_sort_and_marks(root):
    a = make_run(root, "f1", created_at=BASE_TIME)
    b = make_run(root, "f2", status="failed", created_at=BASE_TIME + 60)
    make_run(root, "f3", status="preempted", created_at=BASE_TIME + 120)
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#runs")
        assert [r.phase for r in screen.visible_rows()] == ["f3", "f2", "f1"]  # newest first
        await pilot.press("slash", *"fail", "enter")
        assert table.row_count == 1 and screen.selected == b
        await pilot.press("escape")
        assert table.row_count == 3
        sorts = []
        for _ in range(3):
            await pilot.press("s")
            sorts.append(screen.sort_key)
        assert sorts == ["phase", "id", "status"]
        assert [r.status for r in screen.visible_rows()] == ["failed", "finished", "preempted"]
        table.move_cursor(row=table.get_row_index(str(a)))
        await pilot.press("space")
        assert screen.marked == {a}
        await pilot.press("c")  # one marked run is not enough to compare
        assert isinstance(app.screen, RunsScreen)


async def test_help_lists_every_binding(root):
    app = VoltxConsole([root])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        from voltx.console.screens.help import HelpScreen, bindings_table

        assert isinstance(app.screen, HelpScreen)
        table = bindings_table(app.screen.target)
        keys = list(table.columns[0]._cells)
        for key in ("/", "s", "space", "c", "x", "R", "a", "e", "n", "S", "P", "?", "q", "enter"):
            assert key in keys, key
        assert len(keys) == len(set(keys)), keys  # one row per key (? and enter were listed twice)
        assert "question_mark" not in keys and "slash" not in keys  # what the user types, not Textual's key names
        assert table.columns[1]._cells[keys.index("enter")] == "open the selected run's detail"
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_corrupt_and_newer_format_runs_are_states(root):
    make_run(root, "f1", corrupt_tail=True, created_at=BASE_TIME)
    newer = make_run(root, "f1", format_version=99, created_at=BASE_TIME + 60)
    broken = root / "f1" / "20231114-230000-dead00"
    broken.mkdir(parents=True)
    (broken / "run.json").write_text("{not json", encoding="utf-8")
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        rows = app.screen.index.rows
        assert rows[newer].problem == "newer format: upgrade voltx" and rows[newer].read_only
        assert rows[broken].status == "damaged"
        assert rows[broken].problem == "run.json: not valid JSON (line 1 column 2: Expecting property name enclosed in double quotes)"
        table = app.screen.query_one("#runs")
        table.move_cursor(row=table.get_row_index(str(newer)))
        await pilot.press("x")  # stop refuses a newer-format run before asking
        assert isinstance(app.screen, RunsScreen)


async def test_missing_root_and_unwritable_root(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "runs"
    app = VoltxConsole([missing])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "does not exist yet" in str(app.screen.query_one("#roots-state").render())
        assert app.screen.query_one("#runs-empty").display
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    real_access = os.access  # root may write anywhere: make the check see what a user would
    monkeypatch.setattr("voltx.console.data.os.access", lambda p, mode: False if str(p) == str(locked) else real_access(p, mode))
    app = VoltxConsole([locked])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        assert "not writable" in str(app.screen.query_one("#roots-state").render())
        assert type(app.screen).__name__ == "RunsScreen"  # launch refused


async def test_file_root_disables_launch(tmp_path):
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    app = VoltxConsole([not_dir])
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen)
        assert "not a directory" in str(app.screen.query_one("#roots-state").render())


async def test_terminal_too_small_state(root):
    app = VoltxConsole([root])
    async with app.run_test(size=(50, 12)) as pilot:
        await pilot.pause()
        from voltx.console.widgets.dialogs import TooSmallScreen

        assert isinstance(app.screen, TooSmallScreen)
        assert "enlarge it to at least 60x16" in str(app.screen.query_one("#too-small-message").render())
        await pilot.resize_terminal(40, 10)
        await pilot.pause(0.1)
        message = app.screen.query_one("#too-small-message")
        assert message.region.width <= 40 and message.region.height >= 2  # wrapped, not cut off at "at leas"
        assert app.screen.styles.background.a == 1  # opaque: the cramped screen is not drawn through it
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.1)
        assert isinstance(app.screen, RunsScreen)


def head(screen: RunsScreen) -> str:
    return str(screen.query_one("#roots-state").render())


async def test_at_80_columns_the_table_fits_and_the_header_shows_sort_and_filter(root, tmp_path):
    make_run(root, "f1", created_at=BASE_TIME)
    make_run(root, "f2", format_version=99, created_at=BASE_TIME + 60)
    app = VoltxConsole([root, tmp_path / "old-runs"], poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#runs")
        titles = [str(c.label) for c in table.columns.values()]
        assert titles[1:] == ["phase", "run", "status", "step", "loss", "ETA"]
        assert table.virtual_size.width <= 80  # every column visible, no horizontal scrolling
        assert "sorted by started ↓" in head(screen)
        assert f"runs root {tmp_path / 'old-runs'} does not exist (nothing listed" in head(screen)  # not "the first run creates it"
        await pilot.press("slash", *"f2", "enter")
        assert "filter: 'f2'" in head(screen)
        await pilot.press("escape")
        assert "filter" not in head(screen)  # at once, not at the next poll
        await pilot.resize_terminal(160, 48)
        await settle(pilot)
        assert "host" in [str(c.label) for c in table.columns.values()] and table.row_count == 2


async def test_headline_loss_term_is_not_repeated(root):
    from voltx.runs.store import RunSummary
    from voltx.console.screens.runs import row_cells

    row = RunSummary(dir=root, id="r", phase="codebook", losses={"movement": 0.0055})
    assert row_cells(row, False)[5] == "0.0055"  # was "0.0055 movement=0.0055"
    row = RunSummary(dir=root, id="r", phase="codebook", losses={"loss": 3.0, "loss_role": 1.0})
    assert "role=1" in row_cells(row, False)[5] and "role" not in row_cells(row, False, compact=True)[5]


def damage_manifest(run_dir, **fields) -> None:
    """A foreign writer (a plugin, a hand edit) left run.json fields of the wrong type."""
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest.update(fields)
    (run_dir / "run.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


async def test_a_run_with_a_damaged_manifest_is_listed_as_damaged_and_never_acted_on(root, monkeypatch):
    import voltx.runs.launch as launch

    intact = make_run(root, "f1", created_at=BASE_TIME)
    dead = make_run(root, "f1", status="preempted", created_at=BASE_TIME + 60)
    damage_manifest(dead, pid="abc", exit_code="x")
    live = make_run(root, "f2", status="running", created_at=BASE_TIME + 120)
    damage_manifest(live, started_at="yesterday")
    signalled = []
    monkeypatch.setattr(launch.os, "kill", lambda pid, sig: signalled.append(pid))
    monkeypatch.setattr(launch, "_start", lambda *a, **k: signalled.append("started a writer"))
    with hold_lock(live):
        app = VoltxConsole([root], poll_s=0.1)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = app.screen
            rows = screen.index.rows
            assert screen.query_one("#runs").row_count == 3  # still listed
            assert rows[intact].status == "finished" and rows[intact].problem is None
            # the original listed these as "preempted" and "running" with host and start time from the file
            assert (rows[dead].status, rows[dead].problem) == ("damaged", "run.json: field 'pid' expected an integer, got 'abc'")
            assert (rows[live].status, rows[live].problem) == ("damaged", "run.json: field 'started_at' expected a number, got 'yesterday'")
            assert (rows[dead].id, rows[dead].phase, rows[dead].host, rows[dead].started_at) == (dead.name, "f1", None, None)
            assert rows[dead].step == 50  # metrics.jsonl is intact: its records are still read
            table = screen.query_one("#runs")
            assert table.get_row(str(dead))[3] == "[bold red]damaged[/] [red](run.json: field 'pid' expected an integer, got 'abc')[/]"
            for run, key in ((live, "x"), (dead, "R"), (live, "R")):
                table.move_cursor(row=table.get_row_index(str(run)))
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, RunsScreen)  # refused before any "are you sure?"
            messages = [n.message for n in app._notifications]
            assert sum("voltx will not signal its process from a manifest it cannot read" in m for m in messages) == 1
            assert sum("voltx will not resume it from a manifest it cannot read" in m for m in messages) == 2
            assert signalled == []  # no signal to a pid read from a damaged manifest, no second writer
            table.move_cursor(row=table.get_row_index(str(dead)))
            await pilot.press("enter")
            await settle(pilot, 0.4)
            head = str(app.screen.query_one("#detail-head").render())
            assert head.startswith("damaged") and "run.json: field 'pid' expected an integer, got 'abc'" in head


async def test_columns_shrink_back_when_a_runs_cells_get_shorter(root):
    """A translator's encoder logs three loss terms, its decoder one: once the run reaches its decoder the
    loss cell is short again, and the columns must shrink with it (DataTable widths only grow), else the
    table stays wider than it needs and cuts the start time off on a narrower screen."""
    from textual.widgets import DataTable

    run = make_run(root, status="running", steps=10)
    with hold_lock(run):
        app = VoltxConsole([root], poll_s=0.1)
        async with app.run_test(size=(150, 30)) as pilot:  # wide enough for the extra loss terms
            await settle(pilot)
            table = app.screen.query_one("#runs", DataTable)
            assert "role=" in str(table.get_cell(str(run), "loss"))
            wide = table.columns["loss"].get_render_width(table)
            with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": 11, "stage": "decoder", "total_steps": 20, "losses": {"loss": 1.5}}) + "\n")
            await settle(pilot, 0.4)
            assert app.screen.index.rows[run].step == 11
            assert table.columns["loss"].get_render_width(table) < wide
            assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.size.width  # nothing cut off


async def test_at_120_columns_a_running_runs_row_fits_without_its_extra_loss_terms(root):
    """The full table (samples/s, host, start time) from 120 columns; the extra loss terms only from
    TERMS_WIDTH, where they fit: at 120 a three-term encoder's row cut the start time off."""
    from textual.widgets import DataTable

    run = make_run(root, status="running", steps=10)
    with hold_lock(run):
        async with VoltxConsole([root], poll_s=0.1).run_test(size=SIZE) as pilot:
            await settle(pilot)
            table = pilot.app.screen.query_one("#runs", DataTable)
            assert "started" in [str(c.label) for c in table.columns.values()] and "role=" not in str(table.get_cell(str(run), "loss"))
            assert sum(c.get_render_width(table) for c in table.columns.values()) <= table.size.width
