"""voltx-console in a real terminal: a detached tmux session on a private server, driven
with send-keys and read with capture-pane (what a user on a rented GPU box does)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from run_factory import make_run

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")


class Tmux:
    """One private tmux server (``tmux -L NAME``): never the user's own sessions."""

    def __init__(self) -> None:
        self.base = [TMUX, "-L", f"voltx-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"]

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=10)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "console").stdout

    def wait_for(self, *texts: str, timeout: float = 60.0) -> str:
        """Wait until every text is on screen at once: a screen paints in several frames, so
        one early word (a title) does not mean the rest has been drawn yet. ``timeout`` bounds a
        stuck console, it is no speed check (the console's start imports textual: seconds under load)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if all(text in shown for text in texts):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts!r} did not all appear within {timeout} s; the pane shows:\n{shown}")
            time.sleep(0.2)

    def wait_gone(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if text not in shown:
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} still shown after {timeout} s; the pane shows:\n{shown}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        assert self("send-keys", "-t", "console", *keys).returncode == 0

    def close(self) -> None:
        self("kill-server")


@pytest.fixture
def tmux():
    server = Tmux()
    yield server
    server.close()


def test_console_in_tmux_help_system_and_quit(tmp_path, tmux):
    root = tmp_path / "store"
    run = make_run(root, "f1", status="finished", steps=20)
    make_run(root, "f2", status="failed", steps=5, created_at=1_700_003_600.0)
    console = shutil.which("voltx-console")
    cmd = [console] if console else [sys.executable, "-m", "voltx.console.app"]
    # After the console exits the pane prints its exit status and stays, so the test can read it.
    script = f"{shlex.join([*cmd, '--runs-dir', str(root)])}; echo console-exited-$?; sleep 60"
    # The pane is the terminal: its size is the window's, not a COLUMNS/LINES this process was given
    # (a pytest-xdist worker has 80x24 there, which made the help scroll).
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "COLUMNS", "LINES")}
    started = subprocess.run([*tmux.base, "new-session", "-d", "-s", "console", "-x", "120", "-y", "40", "sh", "-c", script],
                             capture_output=True, text=True, timeout=10, env=env, cwd=tmp_path)
    assert started.returncode == 0, started.stderr

    shown = tmux.wait_for("runs: 2 under")
    assert run.name in shown and "finished" in shown and "failed" in shown

    tmux.keys("?")
    # The help lists the runs screen's bindings; "escape closes" is its last line.
    tmux.wait_for("keys", "Launch", "System", "escape closes")

    # A key sent right after Escape would arrive as alt+key: wait until the help has closed.
    tmux.keys("Escape")
    tmux.wait_gone("escape closes")
    tmux.keys("S")
    shown = tmux.wait_for("Host ", "CPU", "free of")
    assert "CPU" in shown and "RAM" in shown and "free of" in shown
    assert "No NVIDIA driver/GPU" in shown or "GPU processes" in shown or "NVIDIA" in shown

    tmux.keys("Escape")
    tmux.wait_gone("Host ")
    tmux.wait_for("runs: 2 under")
    tmux.keys("q")
    tmux.wait_for("console-exited-0")
