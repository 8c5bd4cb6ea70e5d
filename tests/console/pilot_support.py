"""Console test helpers: a runs root per test, Pilot settling, the anyio backend.

Not a conftest.py on purpose: a second ``conftest`` module in a subdirectory replaces the
root one in ``sys.modules`` and breaks ``from conftest import ...`` in the other test
directories. Test modules import these fixtures by name instead."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


async def settle(pilot, seconds: float = 0.3) -> None:
    """Let the thread workers read and post their results."""
    await pilot.pause(seconds)
    for _ in range(100):  # exclusive workers cancel each other: wait until none is running
        if not any(w.is_running for w in pilot.app.workers):
            break
        await pilot.pause(0.05)
    await pilot.pause()


@pytest.fixture
def anyio_backend():
    """Async Pilot tests run on asyncio (Textual's loop), through anyio's pytest plugin."""
    return "asyncio"
