"""``voltx attach`` (in-process Pilot + the CLI's error), stop/resume/export/attach actions,
a real stop of a live writer, and import hygiene of the console."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest
from pilot_support import anyio_backend, root, settle  # noqa: F401  (fixtures)
from run_factory import hold_lock, make_run

from voltx.console.app import VoltxConsole
from voltx.console.testing import drawn_detail, until
from voltx.console.widgets.dialogs import ConfirmScreen

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


async def test_attach_is_the_read_only_detail(root):
    from voltx.cli.attach import build_app

    run = make_run(root, alerts=1)
    app = build_app(argparse.Namespace(run=run.name[-6:], runs_dir=str(root)))
    async with app.run_test(size=SIZE) as pilot:
        screen = await drawn_detail(pilot)
        await settle(pilot)
        assert app.screen is screen and len(app.screen_stack) == 2  # default + detail only
        assert screen.view.dir == run and len(screen.view.series) == 50
        for key in ("x", "R", "a", "e", "n"):
            await pilot.press(key)
            await pilot.pause(0.05)
            assert app.screen is screen  # no confirm dialog, no launch screen: nothing is bound
        from voltx.console.screens.help import bindings_table

        keys = list(bindings_table(screen).columns[0]._cells)
        assert "x" not in keys and "R" not in keys and "esc" in keys
        await pilot.press("escape")
    assert app.return_code == 0


def test_attach_cli_unknown_run(cli, tmp_path):
    (tmp_path / "runs").mkdir()
    out = cli("attach", "nope", "--runs-dir", str(tmp_path / "runs"))
    assert out.returncode == 66
    assert "no run matches 'nope'" in out.stderr and "Traceback" not in out.stderr


def test_console_cli_unknown_run(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import sys; from voltx.console.app import main; sys.exit(main(sys.argv[1:]))",
                          "--runs-dir", str(tmp_path), "--run", "zzz"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 66 and "voltx-console: error: no run matches 'zzz'" in out.stderr


def test_console_import_does_not_import_torch():
    code = "import sys, voltx.console.app, voltx.cli.attach; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def select(app, run):
    table = app.screen.query_one("#runs")
    table.move_cursor(row=table.get_row_index(str(run)))


async def test_stop_asks_then_calls_backend_and_shows_its_error(root, monkeypatch):
    import voltx.runs.launch as launch
    from voltx.errors import UsageError

    run = make_run(root, status="running", live_pid=os.getpid())
    calls = []

    def fake_stop(run_dir):
        calls.append(run_dir)
        raise UsageError(f"run {run_dir.name} has just ended; nothing to stop.")

    monkeypatch.setattr(launch, "check_stoppable", lambda d: (d.name, 4242))
    monkeypatch.setattr(launch, "stop_run", fake_stop)
    app = VoltxConsole([root], poll_s=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, run)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert calls == []
        await pilot.press("x", "y")
        await pilot.pause()
        assert calls == [run]
        assert any("just ended" in n.message for n in app._notifications)


async def test_stop_of_an_ended_run_says_why_without_asking(root):
    run = make_run(root, status="finished")
    app = VoltxConsole([root], poll_s=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, run)
        await pilot.press("x")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("already ended (finished)" in n.message for n in app._notifications)


async def test_resume_export_attach_call_the_backend(root, monkeypatch):
    import voltx.runs.launch as launch

    run = make_run(root, status="preempted")
    calls = []
    monkeypatch.setattr(launch, "resume_run", lambda d, **k: calls.append(("resume", d)) or launch.Launched(d.name, "f1", d, 1234, None, None, []))
    monkeypatch.setattr(launch, "attach_command", lambda d: calls.append(("attach", d)) and None)
    out = root / "export.csv"

    def fake_export(d, to, output=None):
        from voltx.runs.export import Exported
        from voltx.runs.jsonl import LineProblem, SkippedLines

        calls.append(("export", d, to))
        skipped = SkippedLines("metrics.jsonl")
        skipped.add(LineProblem(7, "field 'step' expected an integer, got 'abc'"))
        return Exported(out, skipped)

    import voltx.runs.export as export_mod

    monkeypatch.setattr(export_mod, "export_run", fake_export)
    app = VoltxConsole([root], poll_s=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, run)
        await pilot.press("R", "e", "a")
        await pilot.pause()
        assert calls == [("resume", run), ("export", run, "csv"), ("attach", run)]
        messages = " | ".join(n.message for n in app._notifications)
        assert "resumed" in messages and "pid 1234" in messages and str(out) in messages and "no live tmux session" in messages
        assert f"to {out}; skipped 1 malformed line in metrics.jsonl (first: line 7: field 'step' expected an integer, got 'abc')" in messages


async def test_real_stop_of_a_live_writer(root):
    """A child process holds the run's lock and exits 75 on SIGTERM, as a preempted run does."""
    run = make_run(root, status="running", steps=5)
    child = subprocess.Popen([sys.executable, "-c", (
        "import signal, sys, time, sys; sys.path.insert(0, %r)\n"
        "from run_factory import hold_lock\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(75))\n"
        "with hold_lock(%r):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n") % (os.path.dirname(__file__), str(run))], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        manifest = (run / "run.json").read_text().replace('"pid": 4242', f'"pid": {child.pid}').replace('"host": "gpu-box-1"', f'"host": "{os.uname().nodename}"')
        (run / "run.json").write_text(manifest)
        app = VoltxConsole([root], poll_s=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert app.screen.index.rows[run].status == "running"
            select(app, run)
            await pilot.press("x", "y")
            assert child.wait(timeout=60) == 75
            # the manifest still says running; the writer is gone (seen at the next poll)
            await until(pilot, lambda: app.screen.index.rows[run].status == "stale", "the stopped run shown stale")
            assert any("sent SIGTERM" in n.message for n in app._notifications)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


async def test_attach_inside_the_same_tmux_switches_and_says_how_to_come_back(root, monkeypatch, tmp_path):
    """Inside tmux the backend answers ``tmux switch-client``: run without suspending, and
    report failure (no client) or the way back (C-b L), since C-b d detaches the client."""
    import voltx.runs.launch as launch

    run = make_run(root, status="preempted")
    fake = tmp_path / "tmux"
    fake.write_text("#!/bin/sh\necho \"$@\" >> %s\n[ \"$FAIL\" = 1 ] && { echo 'no current client' >&2; exit 1; }\nexit 0\n" % (tmp_path / "calls"))
    fake.chmod(0o755)
    monkeypatch.setattr(launch, "attach_command", lambda d: [str(fake), "switch-client", "-t", f"voltx-{d.name}"])
    app = VoltxConsole([root], poll_s=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        select(app, run)
        await pilot.press("a")
        await pilot.pause()
        assert (tmp_path / "calls").read_text().strip() == f"switch-client -t voltx-{run.name}"
        assert any("C-b L" in n.message for n in app._notifications)
        monkeypatch.setenv("FAIL", "1")
        await pilot.press("a")
        await pilot.pause()
        assert any("could not switch" in n.message and "no current client" in n.message for n in app._notifications)
