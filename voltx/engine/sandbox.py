"""CodeRunner sandbox: run untrusted Python (model-generated code plus its tests) safely.

The original CodeRunner ran WASM in wasmtime with a fuel budget. Here the code is Python,
so containment comes from the operating system, at the strongest level that works on
this machine (:func:`detect_isolation`), reported in every result:

``bubblewrap``
    ``bwrap`` with every namespace unshared (no network, private pids, ipc, uts), a
    read-only system of only ``/usr``, the ``/lib`` links, a minimal ``/etc`` and the
    interpreter, a size-capped private ``/tmp``, no ``/root`` or ``/home`` at all, a
    fresh ``/proc``; only the private work directory is writable.
``unshare``
    util-linux ``unshare`` in new user, network, pid and mount namespaces: no network
    and nothing survives the run, but the file system is only protected by permissions.
``rlimits``
    no namespaces: clean environment, private cwd, limits, new session and group kill.
    The network is *not* isolated, nor are the caller's files unless the run has a
    dedicated uid (see below and :func:`guarantees`).

Every level runs ``python -I -S -B`` with a minimal environment (``PATH``, ``HOME=/tmp``,
``LANG`` and a run token; nothing inherited, so no secrets), in a fresh private
directory, in its own session, under RLIMIT_CPU/AS/FSIZE/NPROC/NOFILE/CORE, with the
whole process group killed at the wall-clock deadline and stdout/stderr read
incrementally and capped.

What contains a fork bomb: RLIMIT_NPROC, which the kernel ignores for uid 0. When the
caller is root, each run therefore gets its own unused uid (``Popen(user=...)``): the
limit then counts exactly that run's processes, files the caller has not made world
accessible are out of reach, and after the run every process of that uid is killed.
(Mapping an unprivileged uid *inside* a user namespace does not help: the kernel checks
the real uid outside it; as root, ``bwrap --unshare-user --uid 1000`` under NPROC=5
forked 20 of 20.) An unprivileged caller keeps its uid; in a user namespace
the count is per namespace, so the limit covers the run alone. The limits are set by
the in-sandbox harness before any untrusted code runs (not by ``preexec_fn``, which is
unsafe in a multi-threaded caller such as a training process).

Test results (``tests_passed``/``tests_total``) come from a harness in the same process
as the untrusted code: adversarial code could forge them, so they measure honest code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import psutil

ISOLATION_LEVELS = ("bubblewrap", "unshare", "rlimits")

_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
_TOKEN_VAR = "VOLTX_SANDBOX"  # lets the post-run sweep find strays at the rlimits level
# Dedicated per-run uids: 0x70000000 + (pid % 2**22) * 64 + slot fills 0x70000000..0x7FFFFFFF,
# above the container ranges systemd hands out, below 2**31; 64 concurrent runs per process.
_UID_BASE, _UID_SLOTS = 0x7000_0000, 64
_GRACE_S = 1.0  # how long to drain pipes after the program ended


@dataclass
class SandboxLimits:
    wall_s: float = 10.0
    """Wall-clock deadline; at it the whole process group (and pid namespace) is killed."""
    cpu_s: int = 5
    """CPU seconds per process (RLIMIT_CPU; SIGXCPU, then SIGKILL a second later)."""
    memory_mb: int = 512
    """Address space per process (RLIMIT_AS); also the size of bubblewrap's /tmp."""
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
    ``network`` no network; ``private_fs`` read-only system, private /tmp, no home;
    ``foreign_files`` the caller's non-world-accessible files are out of reach;
    ``foreign_procs`` other processes (and their environments) are out of reach.
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"unknown isolation {isolation!r}; expected one of {ISOLATION_LEVELS}")
    dedicated = _host().dedicated_uid
    unprivileged = dedicated or os.geteuid() != 0
    have = {"env", "limits"}
    if isolation == "bubblewrap":
        have |= {"network", "private_fs", "foreign_files", "foreign_procs", "no_orphans"}
    elif isolation == "unshare":
        have |= {"network", "foreign_procs", "no_orphans"}
    if unprivileged:
        have.add("processes")
    if dedicated:
        have |= {"foreign_files", "foreign_procs", "no_orphans"}
    return frozenset(have)


class _Host(NamedTuple):
    interpreter: str
    dedicated_uid: bool  # root: each run drops to its own unused uid


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
    """The interpreter to run, and whether runs get a dedicated uid (only as root).

    A dedicated uid needs an interpreter it can reach: a Python under /root (pyenv) is
    not, so the system Python is tried next; the harness and the code need only the
    standard library.
    """
    base = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    if os.geteuid() != 0:
        return _Host(base, False)
    for candidate in (base, "/usr/bin/python3", "/usr/local/bin/python3"):
        interpreter = os.path.realpath(candidate)
        try:
            with _dedicated_uid(True) as uid:
                done = subprocess.run([interpreter, "-I", "-S", "-B", "-c", "pass"], env=_ENV, cwd="/",
                                      capture_output=True, timeout=30, **_as_uid(uid))
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return _Host(interpreter, True)
    return _Host(base, False)


@functools.cache
def available_isolations() -> tuple[str, ...]:
    """Every isolation level that works here, strongest first (always ends with rlimits)."""
    levels = []
    for level in ISOLATION_LEVELS[:-1]:
        if _tool(level) is None:
            continue
        try:
            trial = _execute("pass", None, None, SandboxLimits(wall_s=30), level)
        except OSError:
            continue
        if trial.exit_code == 0:
            levels.append(level)
    return (*levels, "rlimits")


@functools.cache
def _tool(isolation: str) -> str | None:
    """The absolute path of the wrapper a level runs (looked up here: the child's PATH is
    the minimal one)."""
    return shutil.which({"bubblewrap": "bwrap", "unshare": "unshare"}[isolation])


def detect_isolation() -> str:
    """The strongest isolation level that works on this machine (cached)."""
    return available_isolations()[0]


def run_python(code: str, *, tests: str | None = None, limits: SandboxLimits | None = None,
               isolation: str | None = None, entry_point: str | None = None) -> SandboxResult:
    """Run ``code`` (then ``tests``, if given) as a script in the sandbox; never raises for
    the program's own failures.

    ``tests`` may hold top-level ``assert``s and ``check(...)`` calls, ``test_*``
    functions, or a HumanEval ``check(candidate)``, which is called with ``entry_point``
    (default: the last top-level function of ``code``); each counts as one test.
    Raises ValueError for bad limits or an isolation level not available here.
    """
    limits = limits or SandboxLimits()
    limits.validate()
    if not isinstance(code, str) or not (tests is None or isinstance(tests, str)):
        raise ValueError("code and tests must be strings")
    if isolation is None:
        isolation = detect_isolation()
    elif isolation not in available_isolations():
        raise ValueError(f"isolation {isolation!r} is not available here; "
                         f"available: {', '.join(available_isolations())}")
    return _execute(code, tests, entry_point, limits, isolation)


def _execute(code: str, tests: str | None, entry_point: str | None, limits: SandboxLimits,
             isolation: str) -> SandboxResult:
    host = _host()
    with _dedicated_uid(host.dedicated_uid) as uid:
        return _execute_as(uid, host.interpreter, code, tests, entry_point, limits, isolation)


def _execute_as(uid: int | None, interpreter: str, code: str, tests: str | None, entry_point: str | None,
                limits: SandboxLimits, isolation: str) -> SandboxResult:
    token = secrets.token_hex(8)
    workdir = tempfile.mkdtemp(prefix="voltx-sandbox-")
    read_fd, write_fd = os.pipe()
    try:
        for name, text in (("solution.py", code), ("tests.py", tests or ""), ("harness.py", _HARNESS)):
            path = os.path.join(workdir, name)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.chmod(path, 0o644)
        if uid is not None:
            os.chown(workdir, uid, uid)
        config = {
            "fd": write_fd, "tests": tests is not None, "entry_point": entry_point,
            "cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb,
            "file_size_mb": limits.file_size_mb, "max_processes": limits.max_processes,
            # processes of the run's user namespace that the harness cannot see in /proc
            "hidden_tasks": 1 if isolation == "unshare" else 0,
        }
        command = [interpreter, "-I", "-S", "-B", os.path.join(workdir, "harness.py"), json.dumps(config)]
        env = {**_ENV, _TOKEN_VAR: token}
        argv = _wrap(isolation, command, workdir, env, limits, interpreter)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(write_fd,), cwd=workdir, env=env,
                                start_new_session=True, **_as_uid(uid))
        os.close(write_fd)
        write_fd = -1
        return _supervise(proc, read_fd, limits, isolation, uid, token)
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        _remove_tree(workdir)


def _wrap(isolation: str, command: list[str], workdir: str, env: dict, limits: SandboxLimits,
          interpreter: str) -> list[str]:
    if isolation == "rlimits":
        return command
    if isolation == "unshare":
        return [_tool("unshare"), "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
                "--mount-proc", "--", *command]
    argv = [_tool("bubblewrap"), "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf"):
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    prefix = os.path.dirname(os.path.dirname(interpreter))
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--dev", "/dev", "--proc", "/proc", "--size", str(limits.memory_mb << 20), "--tmpfs", "/tmp",
             "--bind", workdir, workdir, "--chdir", workdir, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, "--", *command]


def _supervise(proc: subprocess.Popen, result_fd: int, limits: SandboxLimits, isolation: str,
               uid: int | None, token: str) -> SandboxResult:
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
                    _sweep(uid, token)
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
            _sweep(uid, token)
    duration = (ended or time.monotonic()) - start
    exit_code = status
    if isolation != "rlimits" and status is not None and 128 < status <= 128 + 64:
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


def _sweep(uid: int | None, token: str) -> None:
    """Kill whatever escaped the process group: every process of the run's dedicated uid
    or, without one, every process of ours that carries the run token in its environment
    (a stray that cleared its environment escapes this; namespaces catch it first)."""
    for _ in range(5):
        strays = [proc for proc in psutil.process_iter(["uids", "status"]) if _is_stray(proc, uid, token)]
        if not strays:
            return
        for proc in strays:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        until = time.monotonic() + 1.0
        while time.monotonic() < until and any(map(_running, strays)):
            time.sleep(0.01)


def _is_stray(proc: psutil.Process, uid: int | None, token: str) -> bool:
    try:
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            return False  # dead: only the host's init has yet to reap it
        if uid is not None:
            return proc.info["uids"].real == uid
        return (proc.info["uids"].real == os.getuid() and proc.pid != os.getpid()
                and proc.environ().get(_TOKEN_VAR) == token)
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
    """Remove the work directory even if the program made parts of it unwritable.

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


# Runs inside the sandbox (any Python 3.8+, standard library only).
_HARNESS = r'''
import ast, json, os, resource, sys, traceback

def reap_as_init():
    # As pid 1 of a namespace, signals like SIGXCPU would be ignored and orphans would
    # pile up as zombies: fork, let the child run the program, reap everything here.
    child = os.fork()
    if child == 0:
        return
    while True:
        pid, status = os.wait()
        if pid == child:
            os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))

def visible_tasks():
    me, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat("/proc/" + entry).st_uid == me:
                    count += len(os.listdir("/proc/%s/task" % entry))
            except OSError:
                pass
    return count

def set_limits(cfg):
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu_s"], cfg["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (cfg["memory_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file_size_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    nproc = visible_tasks() + cfg["hidden_tasks"] + cfg["max_processes"]
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

def units_of(tree):
    """Top-level asserts and check(...) calls, then check(candidate), then test_* functions."""
    def is_check_call(node):
        return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "check")
    body = tree.body
    inline = [n for n in body if isinstance(n, ast.Assert) or is_check_call(n)]
    defs = [n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    humaneval = "check" in defs and not any(is_check_call(n) for n in body)
    tests = [name for name in defs if name.startswith("test_")]
    return inline, humaneval, tests

def run_unit(action, report):
    try:
        action()
    except (Exception, SystemExit):
        traceback.print_exc()
        report.write("fail\n")
        return False
    report.write("pass\n")
    return True

def main():
    cfg = json.loads(sys.argv[1])
    if os.getpid() == 1:
        reap_as_init()
    set_limits(cfg)
    report = os.fdopen(cfg["fd"], "w", buffering=1)
    os.set_inheritable(cfg["fd"], False)
    with open("solution.py", encoding="utf-8") as f:
        code = f.read()
    with open("tests.py", encoding="utf-8") as f:
        tests = f.read() if cfg["tests"] else None
    ns = {"__name__": "__main__", "__file__": "solution.py", "__builtins__": __builtins__}
    sys.argv = ["solution.py"]
    units = None
    if tests is not None:
        tree = ast.parse(tests, "tests.py")
        units = units_of(tree)
        inline, humaneval, named = units
        report.write("total %d\n" % (len(inline) + humaneval + len(named)))
    try:
        exec(compile(code, "solution.py", "exec"), ns)
    except SystemExit:
        raise
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)  # not our frame
        return 1
    if units is None:
        return 0
    failed = 0
    for node in tree.body:
        compiled = compile(ast.Module(body=[node], type_ignores=[]), "tests.py", "exec")
        if node in inline:
            failed += not run_unit(lambda: exec(compiled, ns), report)
        else:
            exec(compiled, ns)
    if humaneval:
        name = cfg["entry_point"]
        if name is None:
            defs = [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
            name = defs[-1] if defs else None
        failed += not run_unit(lambda: ns["check"](ns[name]), report)
    for name in named:
        failed += not run_unit(ns[name], report)
    return 1 if failed else 0

sys.exit(main())
'''
