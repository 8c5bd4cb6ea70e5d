"""CodeRunner sandbox: run untrusted Python (model-generated code plus its tests) safely.

The original CodeRunner ran WASM in wasmtime with a fuel budget. Here the code is Python,
so containment comes from the operating system, at the strongest level that works on
this machine (:func:`detect_isolation`), reported in every result. Every level shows the
program the same minimal root (:mod:`voltx.engine.sandbox_levels`): its own work
directory read-write as the cwd, a read-only Python runtime, a minimal ``/dev``, its own
``/proc`` and a size-capped ``/tmp``, in new user, mount, pid, network, ipc and uts
namespaces, with no capabilities. The host's files (``/etc/passwd``, homes, the user's
working tree), processes and network are not there to reach.

``bubblewrap``
    ``bwrap`` builds that root.
``unshare``
    util-linux ``unshare`` makes the namespaces; the harness builds the root in a tmpfs,
    pivots into it, detaches the host's tree and drops every capability before any
    untrusted code runs.

Where neither works, nothing runs: :class:`SandboxUnavailable` names the missing tool
and its install command (there is no unconfined fallback). ``VOLTX_SANDBOX_ISOLATION``
(or ``run_python(isolation=...)``) pins a level.

Every level runs ``python -I -S -B`` with a minimal environment (``PATH``, ``HOME=/tmp``,
``LANG``; nothing inherited, so no secrets), in its own session, under
RLIMIT_CPU/AS/FSIZE/NPROC/NOFILE/CORE, with the whole process group (and so the pid
namespace) killed at the wall-clock deadline and stdout/stderr read incrementally and
capped.

What contains a fork bomb: RLIMIT_NPROC, which the kernel ignores for uid 0. When the
caller is root, each run therefore gets its own unused uid (``Popen(user=...)``): the
limit then counts exactly that run's processes, and after the run every process of that
uid is killed. (Mapping an unprivileged uid *inside* a user namespace does not help: the
kernel checks the real uid outside it; as root, ``bwrap --unshare-user --uid 1000``
under NPROC=5 forked 20 of 20.) An unprivileged caller keeps its uid; in a user
namespace the count is per namespace, so the limit covers the run alone. The limits are
set by the in-sandbox harness (:mod:`voltx.engine.sandbox_harness`) before any untrusted
code runs (not by ``preexec_fn``, which is unsafe in a multi-threaded caller such as a
training process).

Test results (``tests_passed``/``tests_total``) come from a harness in the same process
as the untrusted code: adversarial code could forge them, so they measure honest code.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil

from voltx.engine import sandbox_levels as levels

ISOLATION_LEVELS = levels.LEVELS
FORCE_VAR = "VOLTX_SANDBOX_ISOLATION"
"""Environment variable that pins the isolation level (``bubblewrap`` or ``unshare``)."""

_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
# Dedicated per-run uids: 0x70000000 + (pid % 2**22) * 64 + slot fills 0x70000000..0x7FFFFFFF,
# above the container ranges systemd hands out, below 2**31; 64 concurrent runs per process.
_UID_BASE, _UID_SLOTS = 0x7000_0000, 64
_GRACE_S = 1.0  # how long to drain pipes after the program ended
_PROBE = "import sys; print(sys.base_prefix, sys.base_exec_prefix, getattr(sys, 'platlibdir', 'lib'), sep='\\n')"


class SandboxUnavailable(RuntimeError):
    """No isolation level works here (or the pinned one does not): untrusted code is not
    run. The message names what is missing and how to install it."""


@dataclass
class SandboxLimits:
    wall_s: float = 10.0
    """Wall-clock deadline; at it the whole process group (and pid namespace) is killed."""
    cpu_s: int = 5
    """CPU seconds per process (RLIMIT_CPU; SIGXCPU, then SIGKILL a second later)."""
    memory_mb: int = 512
    """Address space per process (RLIMIT_AS); also the size of the private /tmp."""
    file_size_mb: int = 16
    """Largest file a process may write (RLIMIT_FSIZE)."""
    max_processes: int = 32
    """Processes and threads the program may start beyond its own (RLIMIT_NPROC)."""
    output_bytes: int = 64_000
    """Bytes kept of stdout and of stderr each; more kills the program."""

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        for name in ("wall_s", "cpu_s", "memory_mb", "file_size_mb", "max_processes", "output_bytes"):
            value = getattr(self, name)
            kinds = (int, float) if name == "wall_s" else int
            if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
                wanted = "a positive number" if name == "wall_s" else "a positive integer"
                raise ValueError(f"SandboxLimits.{name} must be {wanted}, got {value!r}")
        if self.memory_mb < 64:
            raise ValueError(f"SandboxLimits.memory_mb must be >= 64 (Python needs it), got {self.memory_mb}")


@dataclass
class SandboxResult:
    ok: bool
    """Exit 0, no limit hit, output complete, and every test (if any) passed."""
    exit_code: int | None
    """The program's exit status; negative for a signal (as in subprocess)."""
    stdout: str
    stderr: str
    timed_out: bool
    killed_by: str | None
    """"wall", "cpu", "memory", "output", "file_size", "processes", "signal", or None."""
    truncated: bool
    duration_s: float
    isolation: str
    tests_passed: int | None
    tests_total: int | None


def guarantees(isolation: str) -> frozenset[str]:
    """What ``isolation`` contains on this machine.

    ``env`` no inherited variables; ``limits`` cpu/memory/file size/wall/output;
    ``processes`` the process cap; ``no_orphans`` nothing outlives the run;
    ``network`` no network; ``private_fs`` only the work dir, a read-only runtime and a
    private /tmp are visible; ``foreign_files`` the host's files are out of reach;
    ``foreign_procs`` other processes (and their environments) are out of reach.
    Every level has all of them but ``processes``, which needs an unprivileged uid.
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"unknown isolation {isolation!r}; expected one of {ISOLATION_LEVELS}")
    have = {"env", "limits", "network", "private_fs", "foreign_files", "foreign_procs", "no_orphans"}
    if _host().dedicated_uid or os.geteuid() != 0:
        have.add("processes")
    return frozenset(have)


def describe_isolation() -> tuple[str, str]:
    """``(status, detail)`` for ``voltx doctor``: the level in use and what it protects."""
    try:
        level = detect_isolation()
    except SandboxUnavailable as exc:
        return "warn", f"CodeRunner/CodeDebugger refuse to run code: {exc}"
    cap = ("process cap" if "processes" in guarantees(level)
           else "no process cap (root, and no spare uid could run the interpreter)")
    return "ok", (f"CodeRunner isolation: {level}: code sees only its temp dir and a read-only Python runtime "
                  f"(no host files, processes, environment or network); cpu/memory/file/output limits, {cap}")


class _Host(NamedTuple):
    interpreter: str
    dedicated_uid: bool  # root: each run drops to its own unused uid
    runtime: tuple  # the read-only mounts the interpreter needs (sandbox_levels.runtime_mounts)


_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()


@contextlib.contextmanager
def _dedicated_uid(wanted: bool):
    """A uid no other live run of this process holds (None when not ``wanted``): the
    post-run sweep kills every process of it, so it must be the run's alone."""
    if not wanted:
        yield None
        return
    with _uid_lock:
        block = _UID_BASE + (os.getpid() % 2**22) * _UID_SLOTS
        free = [uid for uid in range(block, block + _UID_SLOTS) if uid not in _uids_in_use]
        if not free:
            raise RuntimeError(f"more than {_UID_SLOTS} sandboxed runs at once in one process")
        _uids_in_use.add(free[0])
    try:
        yield free[0]
    finally:
        with _uid_lock:
            _uids_in_use.discard(free[0])


def _as_uid(uid: int | None) -> dict:
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


@functools.cache
def _host() -> _Host:
    """The interpreter to run, whether runs get a dedicated uid (only as root), and the
    runtime the sandbox mounts for it.

    A dedicated uid needs an interpreter it can reach: a Python under /root (pyenv) is
    not, so the system Python is tried next; the harness and the code need only the
    standard library.
    """
    base = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    candidates = (base, "/usr/bin/python3", "/usr/local/bin/python3") if os.geteuid() == 0 else (base,)
    for candidate in candidates:
        interpreter = os.path.realpath(candidate)
        try:
            with _dedicated_uid(os.geteuid() == 0) as uid:
                done = subprocess.run([interpreter, "-I", "-S", "-B", "-c", _PROBE], env=_ENV, cwd="/",
                                      capture_output=True, text=True, timeout=30, **_as_uid(uid))
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            prefix, exec_prefix, platlibdir = done.stdout.split("\n")[:3]
            runtime = levels.runtime_mounts(interpreter, [prefix, exec_prefix], platlibdir)
            return _Host(interpreter, uid is not None, tuple(runtime))
    runtime = levels.runtime_mounts(base, [sys.base_prefix, sys.base_exec_prefix], sys.platlibdir)
    return _Host(base, False, tuple(runtime))


@functools.cache
def isolation_status() -> dict[str, str | None]:
    """For each level, None where it works here, else why not (with what to install)."""
    return {level: _trial(level) for level in ISOLATION_LEVELS}


def _trial(level: str) -> str | None:
    if levels.tool(level) is None:
        return levels.missing_tool(level)
    # Run a program that checks it sees the minimal root, not the host's.
    top = sorted(levels.visible_top(levels.root_plan(list(_host().runtime), "/", 1)))
    probe = ("import os, sys\n"
             f"extra = sorted(set(os.listdir('/')) - set({top!r}))\n"
             "sys.exit('/ lists ' + ', '.join(extra) if extra else 0)\n")
    try:
        trial = _execute(probe, None, None, SandboxLimits(wall_s=30), level)
    except OSError as exc:
        return f"`{levels.TOOLS[level]}` could not start: {exc}"
    if trial.exit_code == 0:
        return None
    said = (trial.stderr.strip().splitlines() or [f"exit {trial.exit_code}"])[-1]
    hint = "; install bubblewrap instead: " + levels.INSTALL["bubblewrap"] if level == "unshare" else ""
    return f"a trial run failed ({said}){hint}"


def available_isolations() -> tuple[str, ...]:
    """Every isolation level that works here, strongest first (may be empty)."""
    return tuple(level for level, reason in isolation_status().items() if reason is None)


def detect_isolation() -> str:
    """The level runs use: the one pinned by ``VOLTX_SANDBOX_ISOLATION``, else the strongest
    that works. Raises SandboxUnavailable where that is none."""
    pinned = os.environ.get(FORCE_VAR, "").strip()
    if pinned:
        if pinned not in ISOLATION_LEVELS:
            raise SandboxUnavailable(f"{FORCE_VAR}={pinned!r} is not an isolation level; "
                                     f"use one of {', '.join(ISOLATION_LEVELS)} or unset it")
        return _require(pinned)
    for level in available_isolations():
        return level
    reasons = "; ".join(f"{level}: {reason}" for level, reason in isolation_status().items())
    raise SandboxUnavailable("no isolation level works on this machine, so untrusted code is not run "
                             f"({reasons}). Install bubblewrap: {levels.INSTALL['bubblewrap']}")


def _require(level: str) -> str:
    reason = isolation_status()[level]
    if reason is not None:
        raise SandboxUnavailable(f"isolation {level!r} does not work here, so untrusted code is not run: {reason}")
    return level


def run_python(code: str, *, tests: str | None = None, limits: SandboxLimits | None = None,
               isolation: str | None = None, entry_point: str | None = None) -> SandboxResult:
    """Run ``code`` (then ``tests``, if given) as a script in the sandbox; never raises for
    the program's own failures.

    ``tests`` may hold top-level ``assert``s and ``check(...)`` calls, ``test_*``
    functions, or a HumanEval ``check(candidate)``, which is called with ``entry_point``
    (default: the last top-level function of ``code``); each counts as one test.
    Raises ValueError for bad limits or an unknown isolation level, SandboxUnavailable
    when the level (or every level) cannot confine the run here.
    """
    limits = limits or SandboxLimits()
    limits.validate()
    if not isinstance(code, str) or not (tests is None or isinstance(tests, str)):
        raise ValueError("code and tests must be strings")
    if isolation is None:
        isolation = detect_isolation()
    elif isolation not in ISOLATION_LEVELS:
        raise ValueError(f"unknown isolation {isolation!r}; expected one of {', '.join(ISOLATION_LEVELS)}")
    else:
        _require(isolation)
    return _execute(code, tests, entry_point, limits, isolation)


def _execute(code: str, tests: str | None, entry_point: str | None, limits: SandboxLimits,
             isolation: str) -> SandboxResult:
    host = _host()
    with _dedicated_uid(host.dedicated_uid) as uid:
        return _execute_as(uid, host, code, tests, entry_point, limits, isolation)


def _execute_as(uid: int | None, host: _Host, code: str, tests: str | None, entry_point: str | None,
                limits: SandboxLimits, isolation: str) -> SandboxResult:
    # <top>/work is the program's /sandbox; <top>/root the mount point of the unshare
    # level's new root. Both are the run's uid's alone (mkdtemp makes <top> 0700).
    top = tempfile.mkdtemp(prefix="voltx-sandbox-")
    work, root = os.path.join(top, "work"), os.path.join(top, "root")
    read_fd, write_fd = os.pipe()
    try:
        os.mkdir(work)
        os.mkdir(root)
        harness = Path(__file__).with_name("sandbox_harness.py").read_text(encoding="utf-8")
        for name, text in (("solution.py", code), ("tests.py", tests or ""), ("harness.py", harness)):
            path = os.path.join(work, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(path, 0o644)
        if uid is not None:
            for path in (top, work, root):
                os.chown(path, uid, uid)
        config = {
            "fd": write_fd, "tests": tests is not None, "entry_point": entry_point,
            "cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb,
            "file_size_mb": limits.file_size_mb, "max_processes": limits.max_processes,
            # processes of the run's user namespace that the harness cannot see in /proc
            "hidden_tasks": 1 if isolation == "unshare" else 0,
        }
        plan = levels.root_plan(list(host.runtime), work, limits.memory_mb)
        argv = levels.command(isolation, host.interpreter, work, root, plan, config, _ENV)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(write_fd,), cwd=work, env=_ENV,
                                start_new_session=True, **_as_uid(uid))
        os.close(write_fd)
        write_fd = -1
        return _supervise(proc, read_fd, limits, isolation, uid)
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        _remove_tree(top)


def _supervise(proc: subprocess.Popen, result_fd: int, limits: SandboxLimits, isolation: str,
               uid: int | None) -> SandboxResult:
    """Pump output under the caps until the program ends or a limit kills it."""
    start = time.monotonic()
    deadline = start + limits.wall_s
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    kept = {out_fd: bytearray(), err_fd: bytearray(), result_fd: bytearray()}
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, result_fd: 65_536}
    selector = selectors.DefaultSelector()
    for fd in kept:
        selector.register(fd, selectors.EVENT_READ)
    killed_by, truncated, ended, status = None, False, None, None
    try:
        while True:
            now = time.monotonic()
            if ended is None:
                if _has_exited(proc.pid):
                    ended = now
                    _kill_group(proc.pid)  # leftovers of a finished program go too
                    status = proc.wait()
                    _sweep(uid)
                elif now >= deadline:
                    killed_by = killed_by or "wall"
                    _kill_group(proc.pid)
            if not selector.get_map() and ended is not None:
                break
            if ended is not None and now - ended > _GRACE_S:
                break  # something outside our reach holds a pipe open
            for key, _ in selector.select(timeout=0.05):
                data = os.read(key.fd, 65_536)
                if not data:
                    selector.unregister(key.fd)
                    continue
                room = caps[key.fd] - len(kept[key.fd])
                kept[key.fd] += data[:max(room, 0)]
                if len(data) > room and key.fd != result_fd and not truncated:
                    truncated = True
                    killed_by = killed_by or "output"
                    _kill_group(proc.pid)
    finally:
        selector.close()
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        if proc.returncode is None:
            _kill_group(proc.pid)
            status = proc.wait()
            _sweep(uid)
    duration = (ended or time.monotonic()) - start
    exit_code = status
    if status is not None and 128 < status <= 128 + 64:
        exit_code = -(status - 128)  # bwrap and our pid-1 shim report a signal as 128+n
    stdout = kept[out_fd].decode("utf-8", "replace")
    stderr = kept[err_fd].decode("utf-8", "replace")
    killed_by = killed_by or _diagnose(exit_code, stderr)
    passed, total = _test_counts(kept[result_fd].decode("utf-8", "replace"))
    ok = (exit_code == 0 and killed_by is None and not truncated
          and (total is None or passed == total))
    return SandboxResult(ok=ok, exit_code=exit_code, stdout=stdout, stderr=stderr,
                         timed_out=killed_by == "wall", killed_by=killed_by, truncated=truncated,
                         duration_s=duration, isolation=isolation, tests_passed=passed, tests_total=total)


def _has_exited(pid: int) -> bool:
    """Whether ``pid`` ended, without reaping it: a zombie keeps its pid and process group
    from being reused, so the group kill that follows cannot hit a stranger."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep(uid: int | None) -> None:
    """Kill whatever escaped the process group: every process of the run's dedicated uid.
    (Without one there is nothing to find: every process of the run lives in its pid
    namespace, which dies with the group's pid 1.)"""
    if uid is None:
        return
    for _ in range(5):
        strays = [proc for proc in psutil.process_iter(["uids", "status"]) if _is_stray(proc, uid)]
        if not strays:
            return
        for proc in strays:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        until = time.monotonic() + 1.0
        while time.monotonic() < until and any(map(_running, strays)):
            time.sleep(0.01)


def _is_stray(proc: psutil.Process, uid: int) -> bool:
    try:
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            return False  # dead: only the host's init has yet to reap it
        return proc.info["uids"].real == uid
    except (psutil.Error, AttributeError):  # gone, or not ours to inspect
        return False


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _diagnose(exit_code: int | None, stderr: str) -> str | None:
    """Name the limit behind a failure (from the signal, or the traceback's last line)."""
    if exit_code is None or exit_code == 0:
        return None
    if exit_code < 0:
        return "cpu" if -exit_code == signal.SIGXCPU else "signal"
    tail = stderr[-2000:]
    if "MemoryError" in tail:
        return "memory"
    if "[Errno 27]" in tail:  # EFBIG: RLIMIT_FSIZE (Python ignores SIGXFSZ)
        return "file_size"
    if "BlockingIOError: [Errno 11]" in tail:  # EAGAIN from fork: RLIMIT_NPROC
        return "processes"
    return None


def _test_counts(report: str) -> tuple[int | None, int | None]:
    lines = report.split()
    if "total" not in lines:
        return None, None
    total = int(lines[lines.index("total") + 1])
    return min(lines.count("pass"), total), total


def _remove_tree(path: str) -> None:
    """Remove the run's directory even if the program made parts of it unwritable.

    Runs after every sandboxed process is dead; only real directories are chmod-ed, so
    a planted symlink cannot redirect the chmod onto a file outside.
    """
    def unlock(function, failed, _exc):
        for target in (os.path.dirname(failed), failed):
            if os.path.isdir(target) and not os.path.islink(target):
                with contextlib.suppress(OSError):
                    os.chmod(target, 0o700)
        with contextlib.suppress(OSError):
            function(failed)

    hook = "onexc" if sys.version_info >= (3, 12) else "onerror"
    shutil.rmtree(path, **{hook: unlock})
