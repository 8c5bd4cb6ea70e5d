"""Keys a user meets first: Home/End, the 80x24 footer, each key once in `?`, what esc does
in `voltx attach`; the launch dialog opening on the last launch, the cursor on a new run,
and a tmux switch that says its state in words (NO_COLOR / monochrome terminals)."""

from __future__ import annotations

import argparse
import json

import pytest
from pilot_support import anyio_backend, root, settle  # noqa: F401  (fixtures)
from run_factory import BASE_TIME, make_run
from textual.widgets import Label, Select, Switch
from textual.widgets._footer import FooterKey

import voltx.runs.launch
from voltx.console.app import VoltxConsole
from voltx.console.screens.help import bindings_table
from voltx.console.screens.launch import LaunchScreen
from voltx.console.screens.run_detail import RunDetailScreen
from voltx.console.screens.runs import RunsScreen
from voltx.console.state import LaunchChoice, last_launch, remember_launch, state_path

pytestmark = pytest.mark.anyio


def footer(screen) -> dict[str, tuple[str, int]]:
    """Footer keys as drawn: key -> (description, right edge column)."""
    return {k.key: (k.description, k.region.right) for k in screen.query(FooterKey) if k.region.width}


def help_keys(screen) -> list[str]:
    return list(bindings_table(screen).columns[0]._cells)


async def test_home_and_end_move_the_runs_cursor(root):
    for i in range(6):
        make_run(root, "f1", created_at=BASE_TIME + i * 60)
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#runs")
        assert table.cursor_row == 0
        await pilot.press("end")
        assert table.cursor_row == 5
        await pilot.press("home")
        assert table.cursor_row == 0


async def test_the_80x24_footer_shows_launch_help_and_quit(root):
    make_run(root, "f1")
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = footer(app.screen)
        for key, what in (("n", "Launch"), ("question_mark", "Help"), ("q", "Quit")):
            assert key in keys and keys[key][0] == what, keys
            assert keys[key][1] <= 80, (key, keys[key])


async def test_help_lists_each_key_once_on_the_runs_and_detail_screens(root):
    run = make_run(root, "f1")
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        keys = help_keys(app.screen)
        assert len(keys) == len(set(keys)) and "⏎" not in keys and keys.count("enter") == 1  # enter was listed as ⏎ and enter
        assert "home / end" in keys
        app.push_screen(RunDetailScreen(run))
        await settle(pilot)
        keys = help_keys(app.screen)
        assert len(keys) == len(set(keys))
        assert "1-8" in keys and not any(k in keys for k in "12345678")  # the tab keys were listed one by one and as 1-8
        assert footer(app.screen)["escape"][0] == "Back"


async def test_attach_says_esc_quits(root):
    from voltx.cli.attach import build_app

    run = make_run(root, "f1")
    app = build_app(argparse.Namespace(run=run.name, runs_dir=str(root)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert footer(app.screen)["escape"][0] == "Quit"
        table = bindings_table(app.screen)
        keys = list(table.columns[0]._cells)
        assert table.columns[1]._cells[keys.index("esc")] == "Quit"
        await pilot.press("escape")
    assert app.return_code == 0


# --- the launch dialog remembers ------------------------------------------------------------------


def dialog_choice(screen) -> tuple[str, str | None]:
    preset = screen.query_one("#launch-preset", Select).value
    return screen.query_one("#launch-phase", Select).value, None if preset is Select.NULL else preset


async def open_dialog(pilot, app):
    await pilot.press("n")
    await settle(pilot)
    assert isinstance(app.screen, LaunchScreen)
    return app.screen


async def test_the_first_launch_dialog_offers_the_readme_first_run_not_a_full_recipe(root):
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, app)
        assert dialog_choice(dialog) == ("translator", "quick")


async def test_n_opens_on_the_last_launched_phase_and_preset(root, monkeypatch):
    launched = []

    def fake_launch(phase, *, runs_dir, preset=None, overrides=(), use_tmux=None, config_path=None, nproc_per_node=1):
        run_dir = make_run(root, phase, status="running", created_at=BASE_TIME + 3600)  # what the process creates
        launched.append(run_dir)
        return voltx.runs.launch.Launched(run_dir.name, phase, run_dir, 4242, None, None, ["voltx", "run", phase])

    monkeypatch.setattr(voltx.runs.launch, "launch_run", fake_launch)
    for i in range(3):  # older runs: the newest is listed first, the cursor starts there
        make_run(root, "f2", created_at=BASE_TIME + 7200 + i)
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, app)
        dialog.query_one("#launch-phase", Select).value = "codebook"
        await pilot.pause()
        dialog.query_one("#launch-preset", Select).value = "quick"
        await pilot.press("ctrl+s")
        await settle(pilot, 0.4)
        assert isinstance(app.screen, RunsScreen) and len(launched) == 1
        assert app.screen.selected == launched[0]  # the cursor moved to the new run (it sorts below the f2 runs)
        assert app.screen.query_one("#runs").cursor_row == 3
        assert json.loads(state_path().read_text())["launch"] == {"phase": "codebook", "preset": "quick"}
        dialog = await open_dialog(pilot, app)
        assert dialog_choice(dialog) == ("codebook", "quick")


async def test_a_remembered_choice_that_no_longer_exists_falls_back(root):
    remember_launch(LaunchChoice("gone-phase", "quick"))
    assert last_launch() == LaunchChoice("gone-phase", "quick")
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert dialog_choice(await open_dialog(pilot, app)) == ("translator", "quick")
    remember_launch(LaunchChoice("f2", "no-such-preset"))
    async with VoltxConsole([root], poll_s=0.1).run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert dialog_choice(await open_dialog(pilot, pilot.app)) == ("f2", None)


def test_an_unreadable_state_file_is_nothing_remembered():
    state_path().parent.mkdir(parents=True, exist_ok=True)
    state_path().write_text("{not json")
    assert last_launch() is None
    remember_launch(LaunchChoice("f1", None))
    assert last_launch() == LaunchChoice("f1", None)


async def test_the_tmux_switch_says_on_or_off_in_words(root, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(voltx.runs.launch, "tmux_available", lambda: True)
    app = VoltxConsole([root], poll_s=0.1)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        dialog = await open_dialog(pilot, app)
        label = dialog.query_one("#launch-tmux-label", Label)
        assert str(label.render()).startswith("tmux: ON,")
        dialog.query_one("#launch-tmux", Switch).value = False
        await pilot.pause()
        assert str(label.render()).startswith("tmux: OFF,")
