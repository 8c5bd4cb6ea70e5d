"""Launching, stopping and resuming real runs as detached processes, with and without tmux.

tmux runs on a private server (VOLTX_TMUX_SOCKET -> ``tmux -L``) that each test kills at
the end, so the user's own tmux sessions are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from voltx.testing import fake_plugin_dist, plugin_env
from voltx.errors import EXIT_PREEMPTED, MissingInputError, UsageError
from voltx.runs import launch
from voltx.runs.launch import attach_command, launch_run, resume_run, stop_run, tmux_session_exists, tmux_session_name
from voltx.runs.layout import RUN_ID_RE, new_run_dir, new_run_id, load_manifest
from voltx.runs.lock import RunLock
from voltx.runs.store import TERMINAL

TOY = Path(__file__).parents[1] / "train" / "toy_phase.py"
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy phase installed as a plugin, visible to launched processes through the environment."""
    site = fake_plugin_dist(tmp_path / "site", "voltx-toy", "voltx_toy_phase", TOY.read_text(), entry_name="toy")
    monkeypatch.setenv("PYTHONPATH", plugin_env(site)["PYTHONPATH"])
    return tmp_path / "runs"


@pytest.fixture
def private_tmux(monkeypatch):
    name = f"voltx-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VOLTX_TMUX_SOCKET", name)
    monkeypatch.delenv("TMUX", raising=False)
    yield name
    subprocess.run(["tmux", "-L", name, "kill-server"], capture_output=True)
    socket_dir = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    (socket_dir / name).unlink(missing_ok=True)  # kill-server leaves the socket file behind


def wait_for(predicate, timeout=60.0, what="condition"):
    """Poll ``predicate`` until it holds; ``timeout`` bounds a stuck process, it is no speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def logged_steps(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len([l for l in path.read_text().splitlines() if l.strip()]) if path.exists() else 0


def status(run_dir: Path) -> str | None:
    return load_manifest(run_dir).record.status


def stop_resume_finish(runs: Path, use_tmux: bool) -> None:
    launched = launch_run("toy", runs_dir=runs, overrides=["sleep=0.1", "run.log_every=1"], use_tmux=use_tmux)
    assert RUN_ID_RE.match(launched.run_id) and launched.run_dir == runs.absolute() / "toy" / launched.run_id
    assert launched.command[1:4] == ["-m", "voltx", "run"] and "--run-id" in launched.command
    wait_for(lambda: logged_steps(launched.run_dir) >= 3, what="the run to log steps")
    assert status(launched.run_dir) == "running"
    assert load_manifest(launched.run_dir).record.pid == launched.pid  # the run itself, not a wrapper
    if use_tmux:
        assert tmux_session_exists(launched.tmux_session)
        assert attach_command(launched.run_dir) == ["tmux", "-L", os.environ["VOLTX_TMUX_SOCKET"], "attach", "-t", launched.tmux_session]
    else:
        assert launched.tmux_session is None and attach_command(launched.run_dir) is None

    message = stop_run(launched.run_dir)
    assert "SIGTERM" in message and str(launched.pid) in message
    if launched.process is not None:
        assert launched.process.wait(timeout=60) == EXIT_PREEMPTED
    wait_for(lambda: status(launched.run_dir) == "preempted", what="preempted")
    assert load_manifest(launched.run_dir).record.exit_code == EXIT_PREEMPTED
    with pytest.raises(UsageError, match="already ended \\(preempted\\)"):
        stop_run(launched.run_dir)

    resumed = resume_run(launched.run_dir, use_tmux=use_tmux)
    assert resumed.run_id == launched.run_id and resumed.run_dir == launched.run_dir
    assert resumed.command[-2:] == ["--resume", str(launched.run_dir)]
    if resumed.process is not None:
        assert resumed.process.wait(timeout=120) == 0, resumed.log_path.read_text()
    wait_for(lambda: status(launched.run_dir) == "finished", timeout=120, what="finished")
    manifest = load_manifest(launched.run_dir).raw
    assert len(manifest["attempts"]) == 2 and manifest["attempts"][1]["resumed_from_step"] >= 3
    # the launch log has the output (under tmux its tail, written when the session closes)
    wait_for(lambda: "run finished" in launched.log_path.read_text(errors="replace"), what="the launch log")
    if use_tmux:  # the pane showed a rich progress bar; its log is plain text
        log = launched.log_path.read_bytes()
        assert b"\x1b" not in log and b"\r" not in log and b"resumed at step" in log
    if use_tmux:  # the session ends with the run
        wait_for(lambda: not tmux_session_exists(resumed.tmux_session), what="the session to close")
    with pytest.raises(UsageError, match="already finished"):
        resume_run(launched.run_dir, use_tmux=use_tmux)
    with pytest.raises(UsageError, match="already ended \\(finished\\)"):
        stop_run(launched.run_dir)


@pytest.fixture
def patient_resume(monkeypatch):
    """The resume right after the stop waits for the stopped process's exit: up to 10 s is the
    product's grace, which a loaded 2-core machine with a torch teardown can exceed."""
    monkeypatch.setattr(launch, "EXIT_GRACE_S", 120.0)


def test_detached_process_stop_resume_finish(toy, patient_resume):
    stop_resume_finish(toy, use_tmux=False)


@needs_tmux
def test_tmux_session_stop_resume_finish(toy, private_tmux, patient_resume):
    stop_resume_finish(toy, use_tmux=True)


@needs_tmux
def test_a_tmux_start_that_meets_the_exiting_server_is_tried_again(tmp_path, private_tmux, monkeypatch):
    """tmux ends its server with its last session; a new-session in that moment fails with "server
    exited unexpectedly" and starts nothing (stop -> resume hit it): the start is tried again."""
    from voltx.runs.launch import _start

    real, calls = launch._tmux, []

    def server_exiting_once(*args, **kwargs):
        calls.append(args[0])
        if args[0] == "new-session" and calls.count("new-session") == 1:
            return subprocess.CompletedProcess(args, 1, "", "server exited unexpectedly\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(launch, "_tmux", server_exiting_once)
    seen = tmp_path / "seen.txt"
    code = f"import pathlib, time; pathlib.Path({str(seen)!r}).write_text('ran'); time.sleep(60)"
    launched = _start([sys.executable, "-c", code], run_id="20260101-000000-abcdef", phase="toy", run_dir=tmp_path / "r",
                      root=tmp_path / "runs", use_tmux=True, cwd=tmp_path)
    assert calls.count("new-session") == 2 and tmux_session_exists(launched.tmux_session)
    wait_for(lambda: seen.exists() and seen.read_text() == "ran", what="the pane's command")

    def server_gone(*args, **kwargs):  # any other failure is reported at once, with tmux's words
        calls.append(args[0])
        return subprocess.CompletedProcess(args, 1, "", "duplicate session: x\n")

    monkeypatch.setattr(launch, "_tmux", server_gone)
    calls.clear()
    with pytest.raises(UsageError, match="duplicate session"):
        _start(["true"], run_id="20260101-000000-bcdefa", phase="toy", run_dir=tmp_path / "s", root=tmp_path / "runs",
               use_tmux=True, cwd=tmp_path)
    assert calls == ["new-session"] and not list((tmp_path / "runs" / ".launch").glob("*.env"))


@needs_tmux
def test_closing_the_tmux_session_checkpoints_the_run_instead_of_killing_it(toy, private_tmux):
    """kill-session hangs up the pane (SIGHUP), as an ssh drop does: the run stops like on SIGTERM."""
    from voltx.runs.checkpoints import newest_intact

    launched = launch_run("toy", runs_dir=toy, overrides=["sleep=0.1", "run.log_every=1"], use_tmux=True)
    wait_for(lambda: logged_steps(launched.run_dir) >= 3, what="the run to log steps")
    subprocess.run([*launch.tmux_base(), "kill-session", "-t", f"={launched.tmux_session}"], check=True, timeout=10)
    wait_for(lambda: status(launched.run_dir) in TERMINAL, timeout=60, what="the run to end")
    manifest = load_manifest(launched.run_dir).raw
    assert (manifest["status"], manifest["exit_code"]) == ("preempted", EXIT_PREEMPTED), manifest
    assert "SIGHUP" in manifest["message"] and newest_intact(launched.run_dir / "checkpoints")[0].step >= 3


@needs_tmux
def test_voltx_run_tmux_prints_the_attach_command(toy, private_tmux):
    done = subprocess.run([sys.executable, "-m", "voltx", "run", "toy", "--tmux", "epochs=1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    session = next(w for w in done.stdout.split() if w.startswith("voltx-"))
    assert f"tmux -L {private_tmux} attach -t {session}" in done.stdout
    run_id = session.removeprefix("voltx-")
    wait_for(lambda: status(toy / "toy" / run_id) == "finished", timeout=60, what="the tmux run to finish")


def test_a_failed_start_leaves_its_message_in_the_launch_log(toy):
    launched = launch_run("toy", runs_dir=toy, overrides=["epochz=1"], use_tmux=False)
    assert launched.process.wait(timeout=60) == 78
    assert "epochz" in launched.log_path.read_text() and not launched.run_dir.exists()


def test_launch_refuses_options_disguised_as_overrides(toy):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        launch_run("toy", runs_dir=toy, overrides=["--resume=auto"], use_tmux=False)
    with pytest.raises(UsageError, match="KEY=VALUE"):
        launch_run("toy", runs_dir=toy, overrides=["epochs"], use_tmux=False)


def fake_run(root: Path, *, status: str, host: str | None = None, hold_lock: bool = False) -> tuple[Path, RunLock | None]:
    run_dir = root / "toy" / new_run_id()
    run_dir.mkdir(parents=True)
    manifest = {"id": run_dir.name, "phase": "toy", "status": status, "pid": os.getpid(), "host": host or socket.gethostname()}
    (run_dir / "run.json").write_text(json.dumps(manifest))
    lock = None
    if hold_lock:
        lock = RunLock(run_dir / "lock")
        lock.acquire()
    return run_dir, lock


def test_stop_refuses_runs_that_are_not_live_here(tmp_path):
    finished, _ = fake_run(tmp_path, status="finished")
    with pytest.raises(UsageError, match="already ended \\(finished\\)"):
        stop_run(finished)
    stale, _ = fake_run(tmp_path, status="running")  # writer gone without an end record
    with pytest.raises(UsageError, match="stale"):
        stop_run(stale)
    remote, _ = fake_run(tmp_path, status="running", host="gpu-box-7")
    with pytest.raises(UsageError, match="host gpu-box-7"):
        stop_run(remote)
    with pytest.raises(MissingInputError, match="no readable run.json"):
        stop_run(tmp_path / "nothing")


def test_resume_refuses_a_live_run(tmp_path):
    live, lock = fake_run(tmp_path, status="running", hold_lock=True)
    try:
        with pytest.raises(UsageError, match="still running"):
            resume_run(live, use_tmux=False)
    finally:
        lock.release()


def test_resume_waits_for_a_stopped_run_to_drop_its_lock(tmp_path, monkeypatch):
    """run.json says preempted a moment before the process drops its lock: a resume then would be
    refused inside the detached process, unseen. It waits for the lock, and refuses when it stays."""
    stopping, lock = fake_run(tmp_path, status="preempted", hold_lock=True)
    monkeypatch.setattr(launch, "EXIT_GRACE_S", 0.3)
    started = []
    monkeypatch.setattr(launch, "_start", lambda *a, **k: started.append(k["run_id"]))
    try:
        with pytest.raises(UsageError, match=f"preempted but its process still holds the run \\(pid {os.getpid()} on "):
            resume_run(stopping, use_tmux=False)
        assert started == []
        monkeypatch.setattr(launch, "EXIT_GRACE_S", 60.0)
        threading.Timer(0.3, lock.release).start()  # the process drops it while the resume waits
        resume_run(stopping, use_tmux=False)
        assert started == [stopping.name]
    finally:
        lock.release()


@needs_tmux
def test_resume_refuses_when_the_session_still_has_a_live_process(tmp_path, private_tmux, monkeypatch):
    run_dir, _ = fake_run(tmp_path, status="preempted")
    session = tmux_session_name(run_dir.name)
    subprocess.run(["tmux", "-L", private_tmux, "new-session", "-d", "-s", session, "sleep 60"], check=True)
    monkeypatch.setattr(launch, "EXIT_GRACE_S", 0.3)
    with pytest.raises(UsageError, match="still has a live process"):
        resume_run(run_dir, use_tmux=True)


def test_run_ids(tmp_path, cli_in_process):
    assert RUN_ID_RE.match(new_run_id())
    taken = new_run_id()
    (tmp_path / "toy" / taken).mkdir(parents=True)
    with pytest.raises(UsageError, match="already exists"):
        new_run_dir(tmp_path, "toy", taken)
    assert new_run_dir(tmp_path, "toy", "20250101-000000-abcdef") == tmp_path / "toy" / "20250101-000000-abcdef"
    done = cli_in_process("run", "codebook", "--run-id", "../../etc")
    assert done.returncode == 64 and "is not of the form YYYYmmdd-HHMMSS-xxxxxx" in done.stderr
    done = cli_in_process("run", "codebook", "--resume", "auto", "--run-id", new_run_id())
    assert done.returncode == 64 and "--run-id names a new run" in done.stderr


@needs_tmux
def test_tmux_launch_log_keeps_only_the_tail_of_a_chatty_pane(tmp_path, private_tmux):
    """A progress bar redrawn for hours must not grow the launch log without bound."""
    from voltx.runs.launch import TMUX_LOG_TAIL, _start

    code = "import sys\nfor i in range(40000): sys.stdout.write(f'progress {i:06d} ' + '=' * 40 + chr(10))\nprint('LAST LINE')"
    launched = _start([sys.executable, "-c", code], run_id="20260101-000000-abcdef", phase="toy", run_dir=tmp_path / "r",
                      root=tmp_path / "runs", use_tmux=True, cwd=tmp_path)
    wait_for(lambda: not tmux_session_exists(launched.tmux_session), timeout=60, what="the session to close")
    wait_for(lambda: "LAST LINE" in launched.log_path.read_text(errors="replace"), what="the log tail")
    assert launched.log_path.stat().st_size <= TMUX_LOG_TAIL  # 40000 lines are ~2 MB


@needs_tmux
def test_tmux_launch_hands_the_environment_over_without_a_command_line(tmp_path, private_tmux, monkeypatch):
    """Tokens in the launcher's environment reach the run but no process's argv (which every user can read)."""
    from voltx.runs.launch import _start

    monkeypatch.setenv("HF_TOKEN", "secret-xyz")
    seen = tmp_path / "seen.txt"
    code = f"import os, pathlib, time; pathlib.Path({str(seen)!r}).write_text(os.environ.get('HF_TOKEN', 'missing')); time.sleep(60)"
    launched = _start([sys.executable, "-c", code], run_id="20260101-000000-abcdef", phase="toy", run_dir=tmp_path / "r",
                      root=tmp_path / "runs", use_tmux=True, cwd=tmp_path)
    wait_for(lambda: seen.exists() and seen.read_text(), timeout=30, what="the pane's command")
    assert seen.read_text() == "secret-xyz"  # the run sees it
    leaks = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"secret-xyz" in (proc / "cmdline").read_bytes():
                leaks.append((proc.name, (proc / "cmdline").read_bytes()))
        except OSError:
            continue  # the process ended meanwhile
    assert not leaks
    assert not list((tmp_path / "runs" / ".launch").glob("*.env"))  # read and deleted by the pane
