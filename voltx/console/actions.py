"""Run actions shared by the runs and run-detail screens: stop, resume, attach, export.

The backend (voltx.runs.launch, voltx.runs.export) is imported inside each action so the
console starts fast; every failure is a notification with the backend's message, never a
traceback.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual.app import App

from voltx.console.widgets.dialogs import ConfirmScreen
from voltx.errors import VoltxError


def _refuse_read_only(app: App, run_dir: Path, read_only: bool) -> bool:
    if read_only:
        app.notify(f"{run_dir.name} was written by a newer voltx: read-only here. Upgrade voltx to act on it.", severity="warning")
    return read_only


def stop(app: App, run_dir: Path, read_only: bool = False) -> None:
    """Ask, then SIGTERM the run (it checkpoints and exits as preempted)."""
    if _refuse_read_only(app, run_dir, read_only):
        return
    from voltx.runs import launch

    try:  # a run that cannot be stopped says why at once, before any "are you sure?"
        launch.check_stoppable(run_dir)
    except VoltxError as exc:
        app.notify(str(exc), title="stop", severity="warning")
        return

    def answered(yes: bool | None) -> None:
        if not yes:
            return
        try:
            app.notify(launch.stop_run(run_dir), title="stop")
        except VoltxError as exc:
            app.notify(str(exc), title="stop", severity="error")
        except OSError as exc:
            app.notify(f"could not stop {run_dir.name}: {exc}", title="stop", severity="error")

    app.push_screen(ConfirmScreen(f"Stop run {run_dir.parent.name}/{run_dir.name}?\nIt checkpoints at the next step and can be resumed."), answered)


def resume(app: App, run_dir: Path, read_only: bool = False) -> None:
    if _refuse_read_only(app, run_dir, read_only):
        return
    from voltx.runs import launch

    try:
        launched = launch.resume_run(run_dir)
    except VoltxError as exc:
        app.notify(str(exc), title="resume", severity="error")
        return
    except OSError as exc:
        app.notify(f"could not resume {run_dir.name}: {exc}", title="resume", severity="error")
        return
    where = f"tmux session {launched.tmux_session}" if launched.tmux_session else f"pid {launched.pid}"
    app.notify(f"resumed {run_dir.name} ({where})", title="resume")


def attach(app: App, run_dir: Path) -> None:
    """Suspend the console, ``tmux attach`` to the run's session, come back when it detaches."""
    from voltx.runs import launch

    cmd = launch.attach_command(run_dir)
    if not cmd:
        app.notify(f"{run_dir.name} has no live tmux session (it was started without tmux, or has ended). "
                   f"Its output is in {run_dir / 'stdout.log'}.", title="attach", severity="warning")
        return
    if "switch-client" in cmd:
        # The console runs inside the same tmux server: the client switches sessions, nothing
        # to suspend. C-b d would detach the whole client (not return here), so say how back.
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            app.notify(f"could not run {' '.join(cmd)}: {exc}", title="attach", severity="error")
            return
        if done.returncode != 0:
            app.notify(f"tmux could not switch to {cmd[-1]}: {(done.stderr or done.stdout).strip() or 'no client'}",
                       title="attach", severity="error")
        else:
            app.notify(f"switched to tmux session {cmd[-1]}; come back with C-b L (last session). "
                       "C-b d there detaches from tmux altogether.", title="attach", timeout=10)
        return
    from textual.app import SuspendNotSupported

    try:
        with app.suspend():
            subprocess.run(cmd, check=False)
    except SuspendNotSupported:
        app.notify(f"this terminal cannot suspend the console; run `{' '.join(cmd)}` in another shell.", title="attach", severity="warning")
    except OSError as exc:
        app.notify(f"could not run {' '.join(cmd)}: {exc}", title="attach", severity="error")


def export(app: App, run_dir: Path, to: str = "csv") -> None:
    from voltx.runs import export as exporter

    try:
        done = exporter.export_run(run_dir, to)
    except VoltxError as exc:
        app.notify(str(exc), title="export", severity="error")
        return
    except OSError as exc:
        app.notify(f"could not export {run_dir.name}: {exc}", title="export", severity="error")
        return
    if done.skipped.count:  # as `voltx export` says it: lines that are not step records were left out
        app.notify(f"exported {run_dir.name} to {done.path}; {done.skipped.summary()}", title="export", severity="warning", markup=False)
    else:
        app.notify(f"exported {run_dir.name} to {done.path}", title="export", markup=False)
