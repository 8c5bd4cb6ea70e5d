"""End to end: launch a real quick run from the console and watch it progress and finish.

The console (driven by Pilot) opens the Launch dialog, starts ``voltx run codebook
--preset quick`` as a detached process into a fresh runs root, and the Runs screen, which
only reads the run store, shows the run appear, its step rise and its status end finished.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid

import pytest
from rich.text import Text
from textual.widgets import DataTable, Select, Switch

from voltx.console.app import VoltxConsole
from voltx.console.screens.launch import LaunchScreen
from voltx.runs.layout import list_run_dirs, load_manifest

pytestmark = pytest.mark.slow
DEADLINE_S = 240  # a limit for a stuck launch, not a speed check: it took 10 s idle, over 55 s on a loaded 2-core box


def shown_row(table: DataTable, run_id: str) -> dict[str, str] | None:
    """The runs table's row for ``run_id`` as plain text per column title."""
    titles = [str(c.label) for c in table.columns.values()]
    for i in range(table.row_count):
        cells = [Text.from_markup(str(c)).plain if isinstance(c, str) else str(c) for c in table.get_row_at(i)]
        row = dict(zip(titles, cells))
        if row.get("run") == run_id:
            return row
    return None


@pytest.fixture
def private_tmux(monkeypatch):
    """A private tmux server for launched sessions (voltx.runs.launch honours VOLTX_TMUX_SOCKET)."""
    name = f"voltx-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VOLTX_TMUX_SOCKET", name)
    yield name
    if shutil.which("tmux"):
        subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True, timeout=10)


@pytest.mark.parametrize("use_tmux", [False, True], ids=["detached", "tmux"])
def test_launch_codebook_quick_from_the_console_and_watch_it_finish(tmp_path, private_tmux, use_tmux):
    if use_tmux and not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    root = tmp_path / "runs"

    async def body():
        app = VoltxConsole([root], poll_s=0.1)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, LaunchScreen)
            dialog.query_one("#launch-phase", Select).value = "codebook"
            await pilot.pause()
            dialog.query_one("#launch-preset", Select).value = "quick"
            dialog.query_one("#launch-tmux", Switch).value = use_tmux
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert not isinstance(app.screen, LaunchScreen)

            started = time.monotonic()
            steps_seen: list[int] = []
            statuses: list[str] = []
            run_id = None
            sessions: list[str] = []  # tmux sessions while the run was live
            while time.monotonic() - started < DEADLINE_S:
                await pilot.pause(0.1)
                if run_id is None:
                    runs = list_run_dirs(root)
                    run_id = runs[0].name if runs else None
                    continue
                row = shown_row(app.screen.query_one(DataTable), run_id)
                if row is None:
                    continue
                statuses.append(row["status"])
                if use_tmux and row["status"] == "running" and not sessions:
                    sessions = subprocess.run(["tmux", "-L", private_tmux, "list-sessions", "-F", "#S"],
                                              capture_output=True, text=True, timeout=10).stdout.split()
                step = row["step"].split("/")[0]
                if step.isdigit() and (not steps_seen or int(step) != steps_seen[-1]):
                    steps_seen.append(int(step))
                if row["status"] not in ("running", "stale"):
                    break
            return run_id, steps_seen, statuses, sessions

    run_id, steps_seen, statuses, sessions = asyncio.run(body())
    assert run_id is not None, f"no run appeared under {root} within {DEADLINE_S} s (see {root / '.launch'})"
    run_dir = root / "codebook" / run_id
    manifest = load_manifest(run_dir).raw
    assert statuses and statuses[-1] == "finished", (statuses[-5:], manifest.get("message"))
    assert "running" in statuses  # seen live, not only after the fact
    assert len(steps_seen) >= 2 and steps_seen == sorted(steps_seen), steps_seen
    assert manifest["status"] == "finished" and manifest["preset"] == "quick"
    if use_tmux:  # it ran in its own session, whose pane output is kept in the launch log
        assert f"voltx-{run_id}" in sessions, sessions
        log_path = root / ".launch" / f"{run_id}.log"
        deadline = time.monotonic() + 60  # the tail is written when the session closes, after the run's teardown
        while True:
            log = log_path.read_text(errors="replace").replace("\n", "") if log_path.exists() else ""
            if "run finished" in log or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert "run finished" in log and run_id in log, log[-2000:]
