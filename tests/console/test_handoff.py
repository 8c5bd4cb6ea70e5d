"""A worker's result reaches a screen only while that screen is up (stop 22's CI failure: a runs
scan that finished during shutdown rebuilt a table textual had already pruned, and crashed)."""

from __future__ import annotations

import asyncio

import pytest
from textual.worker import WorkerCancelled
from pilot_support import anyio_backend, root, settle  # noqa: F401  (fixtures)
from run_factory import make_run

from voltx.console.app import VoltxConsole
from voltx.console.screens.handoff import screen_is_up, to_ui
from voltx.console.screens.help import HelpScreen
from voltx.console.screens.runs import RunsScreen

pytestmark = pytest.mark.anyio


async def test_a_result_for_a_closed_screen_is_dropped_and_one_for_a_live_screen_is_shown(root):
    make_run(root)
    app = VoltxConsole([root])
    got = []
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot, 0.1)
        runs = app.screen
        assert isinstance(runs, RunsScreen) and screen_is_up(runs)
        help_screen = HelpScreen(runs)
        await app.push_screen(help_screen)
        await settle(pilot, 0.1)
        app.pop_screen()
        await settle(pilot, 0.1)
        assert not screen_is_up(help_screen)
        await asyncio.to_thread(to_ui, help_screen, got.append, "closed")
        await asyncio.to_thread(to_ui, runs, got.append, "live")
    assert got == ["live"]


async def test_a_scan_that_finishes_during_shutdown_does_not_crash_the_app(root):
    """The runs screen's rebuild is handed over after textual began pruning it: dropped, no
    ``NoMatches`` raised out of the app."""
    make_run(root)
    app = VoltxConsole([root])
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot, 0.1)
        runs = app.screen
        assert isinstance(runs, RunsScreen)
        await runs.query_one("#runs").remove()  # shutdown prunes the children first…
        runs._pruning = True  # …and marks the screen as being taken down
        runs.scans = 0  # a first scan always rebuilds the table
        try:
            while True:
                try:
                    await runs._scan().wait()
                    break
                except WorkerCancelled:  # the screen's own poll started a newer (exclusive) scan: wait for one to finish
                    continue
        finally:
            runs._pruning = False
    assert app._exception is None
