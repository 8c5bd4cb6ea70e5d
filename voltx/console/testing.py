"""Waiting in tests that drive voltx-console with Textual's pilot (a plugin's tests among them).

Screens are pushed, mounted and filled by worker threads: on a loaded machine that takes seconds,
so a test waits for what it needs to see, with a deadline that only bounds a stuck console, never
with a fixed pause (which is either too short under load or wasted when idle).

    screen = await drawn_detail(pilot, lambda s: s.query_one("#plot-loss").points, "the loss curve")
    await until(pilot, lambda: app.screen.query_one(DataTable).row_count == 2, "both runs listed")
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")
POLL_S = 0.05


async def until(pilot, ready: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Let the app run until ``ready()`` returns something true, and return that. After ``timeout``
    seconds an AssertionError names ``what`` and the screen shown then."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not there within {timeout:g} s; the app shows {pilot.app.screen!r}")
        await pilot.pause(POLL_S)


async def drawn_detail(pilot, ready: Callable[..., object] | None = None, what: str = "the run detail", timeout: float = 60.0):
    """The run detail screen once it is mounted and drawn from its first read and ``ready(screen)``
    holds (e.g. a chart has its points); the screen."""
    from voltx.console.screens.run_detail import RunDetailScreen

    def shown():
        screen = pilot.app.screen
        drawn = isinstance(screen, RunDetailScreen) and screen.is_mounted and screen.redraws
        return screen if drawn and (ready is None or ready(screen)) else None

    return await until(pilot, shown, what, timeout)
