"""Start, resume and stop runs as detached processes (for voltx-console and ``voltx run --tmux``).

A launched run is an ordinary ``voltx run`` process that outlives whoever launched it:
inside a new tmux session ``voltx-<run-id>`` when tmux is available (attach to watch it,
ssh may drop), otherwise in its own session with output to ``<runs root>/.launch/<id>.log`` (under tmux
that log gets the last 256 KiB of the pane as plain text when the session closes). Under tmux the
launcher's environment reaches the run through a mode-0600 file the pane deletes at once
(``env_handoff``), never through a command line.
The run id is chosen here and passed as ``--run-id`` so the caller knows the run directory
before the process has created it. No torch, no textual: the console imports this.

``VOLTX_TMUX_SOCKET`` names a private tmux server (``tmux -L NAME``); tests use it so they
never touch the user's own server.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from voltx.errors import MissingInputError, UsageError
from voltx.runs import env_handoff, pane_log
from voltx.runs.env_handoff import write_env_file
from voltx.runs.layout import load_manifest, new_run_id
from voltx.runs.lock import lock_holder, writer_alive
from voltx.runs.plan import RunPlan, plan_run
from voltx.runs.store import TERMINAL, effective_status

ENV_TMUX_SOCKET = "VOLTX_TMUX_SOCKET"
TMUX_LOG_TAIL = 256 * 1024  # bytes of a tmux run's pane output kept in the launch log
EXIT_GRACE_S = 10.0  # a run that released its lock may still be tearing down (CUDA, threads)
# tmux ends its server when the last session closes; a client that connects in that moment (a
# resume right after the stopped run's session closed) is told the server "exited unexpectedly"
# and nothing was started: 5 of 300 tries here with tmux 3.3a. Such a start is tried again.
_TMUX_SERVER_GONE = ("server exited unexpectedly", "lost server")
TMUX_START_TRIES = 5
# Terminal- and tmux-specific variables describe the launcher's terminal, not the run's pane.
_ENV_NOT_PASSED = {"TMUX", "TMUX_PANE", "TERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "COLUMNS", "LINES", "SHLVL", "PWD", "OLDPWD", "_"}


@dataclass
class Launched:
    run_id: str
    phase: str
    run_dir: Path
    pid: int | None
    tmux_session: str | None
    log_path: Path | None
    command: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)
    """The detached process when started without tmux (poll/wait it to reap its exit)."""


# --- tmux --------------------------------------------------------------------------------


def tmux_base() -> list[str]:
    socket_name = os.environ.get(ENV_TMUX_SOCKET)
    return ["tmux", "-L", socket_name] if socket_name else ["tmux"]


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


def tmux_session_name(run_id: str) -> str:
    return f"voltx-{run_id}"


def _tmux(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([*tmux_base(), *args], capture_output=True, text=True, timeout=10, check=check, stdin=subprocess.DEVNULL)


def tmux_session_exists(name: str) -> bool:
    if not tmux_available():
        return False
    return _tmux("has-session", "-t", f"={name}").returncode == 0  # "=": exact name, not a prefix


def _session_live_pids(name: str) -> list[int]:
    """Pids of the session's panes whose process still runs."""
    out = _tmux("list-panes", "-s", "-t", f"={name}:", "-F", "#{pane_dead} #{pane_pid}").stdout
    return [int(pid) for dead, pid in (line.split() for line in out.splitlines() if line.strip()) if dead == "0"]


def attach_command(run_dir: Path) -> list[str] | None:
    """The command that shows the run's tmux session, or None when it has none."""
    run_id = load_manifest(Path(run_dir)).record.id or Path(run_dir).name
    name = tmux_session_name(run_id)
    if not tmux_session_exists(name):
        return None
    inside = os.environ.get("TMUX")
    if inside:
        # Already inside tmux: switch this client when it is the same server; a nested
        # attach to another server needs $TMUX cleared (tmux refuses it otherwise).
        ours = os.environ.get(ENV_TMUX_SOCKET) or "default"
        if Path(inside.split(",")[0]).name == ours:
            return [*tmux_base(), "switch-client", "-t", name]
        return ["env", "-u", "TMUX", *tmux_base(), "attach", "-t", name]
    return [*tmux_base(), "attach", "-t", name]


# --- starting ----------------------------------------------------------------------------


def _log_path(root: Path, run_id: str) -> Path:
    return root / ".launch" / f"{run_id}.log"


def _start(cmd: list[str], *, run_id: str, phase: str, run_dir: Path, root: Path, use_tmux: bool | None, cwd: Path | None) -> Launched:
    if use_tmux is None:
        use_tmux = tmux_available()
    elif use_tmux and not tmux_available():
        raise UsageError("tmux is not installed here: install it, or launch without tmux.")
    log = _log_path(root, run_id)
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write to the runs root {root}: {exc.strerror}. Choose a writable one with --runs-dir.") from None
    cwd = Path(cwd or Path.cwd()).absolute()
    if not use_tmux:
        with open(log, "ab") as out:
            proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        return Launched(run_id, phase, run_dir, proc.pid, None, log, cmd, process=proc)
    session = tmux_session_name(run_id)
    # The environment goes through a private file, never the command line: `tmux new-session
    # -e KEY=VALUE` left every value (tokens, keys) in the tmux server's argv, which every user
    # can read in the process list. The pane's first process reads and deletes the file.
    env_file = log.with_name(f"{run_id}.env")
    try:
        env_file.unlink(missing_ok=True)  # left by a start that failed before its pane began
        write_env_file(env_file, {k: v for k, v in os.environ.items() if k not in _ENV_NOT_PASSED})
    except OSError as exc:
        raise UsageError(f"cannot write the launch environment {env_file}: {exc.strerror}. Choose a writable runs root with --runs-dir.") from None
    pane_cmd = [sys.executable, "-I", str(Path(env_handoff.__file__)), str(env_file), "--", *cmd]
    # The end of the pane's output goes to the launch log when the session closes, so a run
    # that fails before it has a run directory (bad config) still leaves its message. Only
    # the tail, as plain text: a progress bar redrawn 10 times a second would grow it ~6 MB an
    # hour in escape sequences, and the run's own stdout.log has everything else.
    to_log = shlex.join([sys.executable, "-I", str(Path(pane_log.__file__)), "--tail", str(TMUX_LOG_TAIL), str(log)])
    for attempt in range(TMUX_START_TRIES):
        done = _tmux(
            "new-session", "-d", "-s", session, "-x", "200", "-y", "50", "-c", str(cwd), shlex.join(pane_cmd),
            ";", "pipe-pane", "-t", f"={session}:", to_log,
        )
        exiting = done.returncode != 0 and any(m in done.stderr for m in _TMUX_SERVER_GONE)
        if not exiting or not env_file.exists():  # a pane that started has read (deleted) the file: never a second one
            break
        time.sleep(0.1 * (attempt + 1))
    if done.returncode != 0:
        env_file.unlink(missing_ok=True)
        raise UsageError(f"tmux could not start session {session}: {done.stderr.strip() or done.stdout.strip()}")
    pids = _session_live_pids(session)
    return Launched(run_id, phase, run_dir, pids[0] if pids else None, session, log, cmd)


def start_planned(plan: RunPlan, *, use_tmux: bool | None = None, cwd: Path | None = None) -> Launched:
    """Carry ``plan`` out as a detached ``voltx run`` and return at once; ``use_tmux`` None = tmux
    if available. A new run gets its id here (the caller learns its directory before the process
    has made it); a resumed run must not be live, since its lock would only refuse it inside
    the detached process, where nobody reads the message."""
    if plan.resume_dir is None:
        root = plan.root.absolute()
        plan = replace(plan, root=root, run_id=plan.run_id or new_run_id())
        return _start(plan.child_argv(), run_id=plan.run_id, phase=plan.phase, run_dir=plan.run_dir, root=root, use_tmux=use_tmux, cwd=cwd)
    run_dir = plan.resume_dir.absolute()
    root = run_dir.parent.parent  # the run's own store, wherever --resume RUN pointed
    plan = replace(plan, root=root, resume_dir=run_dir)
    read = load_manifest(run_dir)
    if effective_status(run_dir, read) == "running":
        raise UsageError(f"run {run_dir.name} is still running; stop it first (SIGTERM), then resume.")
    # A stopped run writes its end to run.json just before it drops its lock: one resumed in that
    # moment would be refused by the lock inside the detached process, where nobody reads it.
    deadline = time.monotonic() + EXIT_GRACE_S
    while writer_alive(run_dir):
        if time.monotonic() > deadline:
            raise UsageError(f"run {run_dir.name} is {read.record.status} but its process still holds the run ({lock_holder(run_dir)}); "
                             "wait until it has exited, then resume.")
        time.sleep(0.1)
    run_id = read.record.id or run_dir.name
    session = tmux_session_name(run_id)
    if use_tmux is not False and tmux_session_exists(session):
        live = _session_live_pids(session)
        deadline = time.monotonic() + EXIT_GRACE_S
        while live and time.monotonic() < deadline:  # the run released its lock and is exiting
            time.sleep(0.1)
            live = _session_live_pids(session) if tmux_session_exists(session) else []
        if live:
            raise UsageError(f"tmux session {session} still has a live process (pid {live[0]}); attach with `{' '.join([*tmux_base(), 'attach', '-t', session])}` and end it first.")
        if tmux_session_exists(session):
            _tmux("kill-session", "-t", f"={session}")  # only dead panes left (remain-on-exit)
    return _start(plan.child_argv(), run_id=run_id, phase=plan.phase, run_dir=run_dir, root=root, use_tmux=use_tmux, cwd=cwd)


def launch_run(
    phase: str,
    *,
    runs_dir: Path,
    preset: str | None = None,
    overrides=(),
    config_path: Path | None = None,
    use_tmux: bool | None = None,
    cwd: Path | None = None,
    nproc_per_node: int = 1,
) -> Launched:
    """Start a new ``voltx run PHASE`` detached (the console's launch dialog); ``phase`` is the
    phase's registered name (the run directory is ``runs_dir/phase/<id>``); ``nproc_per_node``
    > 1 runs it as that many processes (``--nproc-per-node``)."""
    from voltx.train.launcher import Launch

    plan = plan_run(phase, config=config_path, preset=preset, overrides=overrides, runs_dir=runs_dir)
    return start_planned(replace(plan, launch=tuple(Launch(nproc_per_node).argv())), use_tmux=use_tmux, cwd=cwd)


def resume_run(run_dir: Path, *, use_tmux: bool | None = None, cwd: Path | None = None) -> Launched:
    """Resume the run in ``run_dir`` detached, with its saved config (the console's resume);
    refused as ``voltx run PHASE --resume RUN_DIR`` refuses it, and when it is live."""
    run_dir = Path(run_dir).absolute()
    phase = load_manifest(run_dir).record.phase or run_dir.parent.name
    plan = plan_run(phase, runs_dir=run_dir.parent.parent, resume=str(run_dir))
    return start_planned(plan, use_tmux=use_tmux, cwd=cwd)


# --- stopping ----------------------------------------------------------------------------


def check_stoppable(run_dir: Path) -> tuple[str, int]:
    """(run name, pid) of a run that ``stop_run`` may signal; UsageError/MissingInputError
    saying why not otherwise (the console asks this before it asks the user to confirm)."""
    run_dir = Path(run_dir)
    read = load_manifest(run_dir)
    if read.missing:
        raise MissingInputError(f"{run_dir} has no readable run.json (not a run directory, or it has not started yet).")
    manifest = read.intact(run_dir, "signal its process")  # a damaged pid is never signalled
    name = manifest.id or run_dir.name
    status = manifest.status
    if status in TERMINAL:
        raise UsageError(f"run {name} is not running: it already ended ({status}).")
    host, here = manifest.host, socket.gethostname()
    if host and host != here:
        raise UsageError(f"run {name} runs on host {host}, not {here}; stop it there.")
    if effective_status(run_dir, read) != "running":
        raise UsageError(f"run {name} is not running: its writer is gone (stale). Resume it to continue.")
    pid = manifest.pid
    if pid is None or pid <= 0:
        raise UsageError(f"run {name} has no valid pid in run.json; cannot signal it.")
    return name, pid


def stop_run(run_dir: Path) -> str:
    """SIGTERM a live run on this host: it checkpoints at the next step boundary and exits 75."""
    name, pid = check_stoppable(run_dir)
    if not writer_alive(Path(run_dir)):  # re-check right before signalling: the run may just have ended
        raise UsageError(f"run {name} has just ended; nothing to stop.")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise UsageError(f"run {name}: process {pid} is gone; nothing to stop.") from None
    except PermissionError:
        raise UsageError(f"run {name}: not allowed to signal process {pid} (another user's run).") from None
    return f"sent SIGTERM to run {name} (pid {pid}): it checkpoints at the next step and exits as preempted (75); resume it later."
