"""CodeRunner sandbox: the attack suite, run at every isolation level (a level this machine
does not offer is skipped, saying why).

Each attack runs under tight limits and must be contained within them with nothing left
running. Every level must show the program only its own work directory and a read-only
runtime; a machine that offers no such level must refuse to run code at all.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import socket
import time
import uuid
from pathlib import Path

import psutil
import pytest

from voltx.engine import sandbox, sandbox_levels
from voltx.engine.sandbox import (
    FORCE_VAR,
    ISOLATION_LEVELS,
    SandboxLimits,
    SandboxUnavailable,
    available_isolations,
    detect_isolation,
    guarantees,
    isolation_status,
    run_python,
)

TIGHT = SandboxLimits(wall_s=3, cpu_s=2, memory_mb=256, file_size_mb=1, max_processes=16,
                      output_bytes=10_000)
SECRET = "hf_" + uuid.uuid4().hex  # shaped like a Hugging Face token


@pytest.fixture(params=ISOLATION_LEVELS)
def level(request):
    reason = isolation_status()[request.param]
    if reason is not None:
        pytest.skip(f"isolation {request.param!r} is not available on this machine: {reason}")
    return request.param


@pytest.fixture
def marker():
    """A string to embed in sandboxed command lines, to find survivors by."""
    return f"voltx-sandbox-test-{uuid.uuid4().hex}"


@pytest.fixture
def missing_tools(monkeypatch):
    """Make the named wrappers absent (as on a machine without them), for this test only."""
    def hide(*names):
        real = sandbox_levels.shutil.which
        monkeypatch.setattr(sandbox_levels.shutil, "which", lambda name: None if name in names else real(name))
        forget()

    def forget():
        sandbox_levels.tool.cache_clear()
        isolation_status.cache_clear()

    monkeypatch.delenv(FORCE_VAR, raising=False)
    yield hide
    monkeypatch.undo()
    forget()


def run(code, level, **limits):
    return run_python(code, limits=dataclasses.replace(TIGHT, **limits), isolation=level)


def require(level, protection, reason):
    if protection not in guarantees(level):
        pytest.skip(f"isolation {level!r} does not contain this: {reason}")


def survivors(marker):
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and marker in " ".join(proc.info["cmdline"] or ()):
            found.append(proc)
    return found


def attempts(paths, action="open(path).read()"):
    """Code that tries ``action`` on each path and prints one JSON line per outcome."""
    return ("import json, os\n"
            f"for path in {[str(p) for p in paths]!r}:\n"
            f"    try:\n        got = {action}\n        print(json.dumps([path, 'done', str(got)[:200]]))\n"
            "    except OSError as exc:\n        print(json.dumps([path, type(exc).__name__, '']))\n")


def outcomes(result):
    assert result.exit_code == 0, result.stderr
    return {path: (outcome, text) for path, outcome, text in map(json.loads, result.stdout.splitlines())}


# --- API ----------------------------------------------------------------------------------


def test_runs_at_the_strongest_working_level_or_the_pinned_one(monkeypatch):
    monkeypatch.delenv(FORCE_VAR, raising=False)
    if not available_isolations():
        pytest.skip(f"no isolation level works here: {isolation_status()}")
    assert detect_isolation() == available_isolations()[0]
    assert run_python("pass").isolation == available_isolations()[0]
    for level in available_isolations():
        monkeypatch.setenv(FORCE_VAR, level)
        assert detect_isolation() == level and run_python("pass").isolation == level
    monkeypatch.setenv(FORCE_VAR, "rlimits")
    with pytest.raises(SandboxUnavailable, match="not an isolation level"):
        run_python("pass")


def test_every_level_promises_the_same_containment():
    for level in ISOLATION_LEVELS:
        assert {"env", "limits", "network", "private_fs", "foreign_files", "foreign_procs", "no_orphans"} <= guarantees(level)
    with pytest.raises(ValueError, match="unknown isolation"):
        guarantees("rlimits")


@pytest.mark.parametrize("bad", [{"wall_s": 0}, {"cpu_s": 1.5}, {"max_processes": -1},
                                 {"memory_mb": 8}, {"output_bytes": True}])
def test_bad_limits_are_our_error(bad):
    with pytest.raises(ValueError, match="SandboxLimits"):
        run_python("pass", limits=dataclasses.replace(TIGHT, **bad))


def test_unknown_isolation_is_our_error():
    with pytest.raises(ValueError, match="unknown isolation 'chroot'"):
        run_python("pass", isolation="chroot")


def test_without_any_level_code_is_refused_naming_the_install(missing_tools, tmp_path):
    missing_tools("bwrap", "unshare")
    assert available_isolations() == ()
    leak = tmp_path / "not-run"
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap") as refused:
        run_python(f"open({str(leak)!r}, 'w').write('ran')")
    assert "`bwrap` not found" in str(refused.value) and "`unshare` not found" in str(refused.value)
    assert not leak.exists()
    status, detail = sandbox.describe_isolation()
    assert status == "warn" and "apt-get install bubblewrap" in detail


def test_a_pinned_level_that_is_missing_is_refused(missing_tools, monkeypatch):
    missing_tools("bwrap")
    monkeypatch.setenv(FORCE_VAR, "bubblewrap")
    with pytest.raises(SandboxUnavailable, match=r"isolation 'bubblewrap' does not work here.*apt-get install bubblewrap"):
        run_python("print('ran')")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        run_python("print('ran')", isolation="bubblewrap")


def test_a_level_that_would_show_the_host_is_refused(missing_tools, monkeypatch):
    """The trial run checks the root it gets: a wrapper that skipped the confinement
    (here: unshare without the harness building the minimal root) is not used."""
    if isolation_status()["unshare"] is not None:
        pytest.skip(f"isolation 'unshare' is not available: {isolation_status()['unshare']}")
    real = sandbox_levels.command

    def unconfined(level, interpreter, work, root, plan, config, env):
        argv = real(level, interpreter, work, root, plan, config, env)
        return [*argv[:-1], json.dumps({**json.loads(argv[-1]), "confine": None})]

    monkeypatch.setattr(sandbox_levels, "command", unconfined)
    missing_tools("bwrap")
    reason = isolation_status()["unshare"]
    listed = set(reason.split("/ lists ")[1].split(")")[0].split(", "))  # what the host's / added
    assert listed and listed <= set(os.listdir("/")) and not listed & {"usr", "etc", "dev", "proc", "tmp"}, reason
    with pytest.raises(SandboxUnavailable, match="does not work here"):
        run_python("pass", isolation="unshare")


def test_code_strands_refuse_without_a_sandbox(missing_tools):
    from voltx.engine.router import IntentRouter
    from voltx.engine.stub_translator import StubTranslator
    from voltx_plugins.strands.code_debugger import CodeDebugger
    from voltx_plugins.strands.code_runner import CodeRunner

    missing_tools("bwrap", "unshare")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        CodeRunner().run("print(1)")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        CodeDebugger().debug("1 / 0")
    frame = StubTranslator().encode("run: print(1)")
    (decision,) = IntentRouter([CodeRunner(), CodeDebugger()]).route(frame)
    assert decision.failed and "SandboxUnavailable" in decision.error and "apt-get install bubblewrap" in decision.error


def test_doctor_states_the_level_and_what_it_protects(cli, tmp_path):
    checks = {c["check"]: c for c in json.loads(cli("doctor", "--json", env={FORCE_VAR: "unshare"}).stdout)["checks"]}
    if isolation_status()["unshare"] is None:
        assert checks["sandbox"]["status"] == "ok"
        assert checks["sandbox"]["detail"].startswith("CodeRunner isolation: unshare: code sees only its temp dir "
                                                      "and a read-only Python runtime (no host files")
    # a machine with neither tool: PATH without them
    done = cli("doctor", "--json", env={"PATH": str(tmp_path)})
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["sandbox"]["status"] == "warn"
    assert "refuse to run code" in checks["sandbox"]["detail"] and "apt-get install bubblewrap" in checks["sandbox"]["detail"]


def test_ok_program_returns_its_output(level):
    result = run("import sys\nprint('hello', 6 * 7)\nprint('warn', file=sys.stderr)", level)
    assert result.ok and result.exit_code == 0 and not result.timed_out and result.killed_by is None
    assert (result.stdout, result.stderr) == ("hello 42\n", "warn\n")
    assert result.isolation == level and result.tests_total is None and result.duration_s < 3


def test_program_failure_is_a_result_not_an_exception(level):
    result = run("def f():\n    raise KeyError('boom')\nf()", level)
    assert not result.ok and result.exit_code == 1 and result.killed_by is None
    assert 'File "solution.py", line 2' in result.stderr and "KeyError: 'boom'" in result.stderr
    assert "harness" not in result.stderr


# --- tests and their counts ------------------------------------------------------------------

HUMANEVAL_TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(0, 0) == 0\n"


@pytest.mark.parametrize("body, passed", [("return a + b", 1), ("return a * b", 0)])
def test_humaneval_check_is_called_with_the_entry_point(body, passed):
    code = f"def helper():\n    pass\n\ndef add(a, b):\n    {body}\n"
    result = run_python(code, tests=HUMANEVAL_TESTS, limits=TIGHT)
    assert (result.tests_passed, result.tests_total, result.ok) == (passed, 1, passed == 1)
    named = run_python(code.replace("def helper", "def zzz") + "\ndef later():\n    pass\n",
                       tests=HUMANEVAL_TESTS, entry_point="add", limits=TIGHT)
    assert named.tests_passed == passed


def test_top_level_asserts_and_test_functions_are_counted_one_by_one():
    tests = ("import math\nassert square(2) == 4\nassert square(3) == 10\ncheck(square)\n"
             "def test_zero():\n    assert square(0) == 0\n"
             "def test_negative():\n    assert square(-2) == -4\n")
    code = "def square(x):\n    return x * x\n\ndef check(f):\n    assert f(5) == 25\n"
    result = run_python(code, tests=tests, limits=TIGHT)
    assert (result.tests_passed, result.tests_total) == (3, 5)
    assert not result.ok and result.exit_code == 1
    assert "assert square(3) == 10" in result.stderr and "test_negative" in result.stderr


def test_code_that_crashes_passes_no_tests():
    result = run_python("raise SystemExit(0)", tests="assert True\n", limits=TIGHT)
    assert (result.tests_passed, result.tests_total, result.ok) == (0, 1, False)


# --- the attacks: the host's files ------------------------------------------------------


def test_secret_files_outside_the_sandbox_are_not_there(level, tmp_path, monkeypatch):
    """Beside the run (tmp_path), in the user's working tree (cwd) and this very file."""
    outside = tmp_path / "secret.txt"
    outside.write_text(SECRET)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(f"HF_TOKEN={SECRET}\n")
    monkeypatch.chdir(project)
    targets = [outside, project / ".env", Path.cwd() / ".env", Path(__file__).resolve(), tmp_path, project]
    result = run(attempts(targets[:4]) + attempts(targets[4:], "os.listdir(path)"), level)
    assert set(outcomes(result).values()) == {("FileNotFoundError", "")}, result.stdout


def test_root_lists_only_the_minimal_root(level):
    code = ("import json, os, sys\n"
            "files = []\n"
            "for top, dirs, names in os.walk('/'):\n"
            "    # the runtime's library folders and the kernel's views are the only big trees\n"
            "    dirs[:] = [d for d in dirs if not d.startswith('lib') and os.path.join(top, d) not in ('/proc', '/dev')]\n"
            "    files += [os.path.join(top, n) for n in names]\n"
            "print(json.dumps({'root': sorted(os.listdir('/')), 'etc': os.listdir('/etc'), 'dev': sorted(os.listdir('/dev')),\n"
            "                  'files': sorted(files), 'python': sys.executable, 'cwd': os.getcwd()}))\n")
    seen = json.loads(run(code, level).stdout)
    runtime_top = seen["python"].strip("/").split("/")[0]  # "usr", or where a pyenv lives
    assert set(seen["root"]) <= {"usr", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc", "tmp", "sandbox", runtime_top}
    assert {"etc", "dev", "proc", "tmp", "sandbox"} <= set(seen["root"])
    assert not {"home", "root", "work", "var", "opt", "mnt", "srv", "boot", "run"} - {runtime_top} & set(seen["root"])
    assert seen["etc"] == ["ld.so.cache"] and seen["cwd"] == "/sandbox"
    assert set(seen["dev"]) <= {"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr",
                                "tty", "shm", "pts", "ptmx", "console", "core", "mqueue"}
    # every file outside the library folders: the interpreter, ld.so.cache and the run's own
    assert set(seen["files"]) - {seen["python"]} == {
        "/etc/ld.so.cache", "/sandbox/harness.py", "/sandbox/solution.py", "/sandbox/tests.py"}


def test_passwd_and_the_users_home_are_not_there(level):
    home = Path.home()
    planted = home / f".voltx-sandbox-secret-{uuid.uuid4().hex}"
    try:
        planted.write_text(SECRET)
    except OSError:
        planted = None  # a read-only home: the listing below still has to hide it
    try:
        result = run(attempts(["/etc/passwd", "/etc/shadow", "/etc/hostname", *([planted] if planted else [])])
                     + attempts([home], "os.listdir(path)"), level)
    finally:
        if planted:
            planted.unlink()
    seen = outcomes(result)
    assert SECRET not in result.stdout and "root:" not in result.stdout
    assert all(outcome == "FileNotFoundError" for path, (outcome, _) in seen.items() if path != str(home)), seen
    outcome, listing = seen[str(home)]
    # only a runtime kept under the home (a user's pyenv) may show, nothing else of it
    assert outcome == "FileNotFoundError" or set(ast.literal_eval(listing)) <= {".pyenv", ".local", "miniconda3", "anaconda3"}


def test_writes_outside_the_work_dir_fail(level, tmp_path, marker, monkeypatch):
    monkeypatch.chdir(tmp_path)
    targets = [tmp_path / "escaped.txt", f"/etc/{marker}", f"/usr/lib/{marker}", f"/{marker}", f"/sandbox/../{marker}"]
    code = attempts(targets, "open(path, 'w').write('pwned')") + (
        "open('inside.txt', 'w').write('fine')\n"
        f"open('/tmp/{marker}', 'w').write('private')\n"
        "print(json.dumps(['inside', 'done', open('inside.txt').read()]))\n")
    seen = outcomes(run(code, level))
    assert seen.pop("inside") == ("done", "fine")
    assert all(outcome in ("FileNotFoundError", "PermissionError", "OSError") for outcome, _ in seen.values()), seen
    assert not any(os.path.exists(t) for t in targets)
    assert not os.path.exists(f"/tmp/{marker}")  # its /tmp is its own


def test_files_outside_cannot_be_deleted(level, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    code = ("import os, shutil\n"
            f"for attack in (lambda: os.remove({str(victim)!r}), lambda: shutil.rmtree({str(tmp_path)!r})):\n"
            "    try:\n        attack()\n        print('deleted')\n"
            "    except OSError as exc:\n        print('denied', type(exc).__name__)\n")
    result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == "keep me" and "deleted" not in result.stdout


def test_no_privilege_to_undo_the_confinement(level):
    """No capabilities left: the read-only runtime cannot be remounted, no chroot, no new mounts."""
    code = ("import ctypes, json, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "caps = {l.split(':')[0]: int(l.split()[1], 16) for l in open('/proc/self/status') if l.startswith('Cap')}\n"
            "remount = libc.mount(None, b'/usr/lib', None, ctypes.c_ulong(32 | 4096), None)\n"  # MS_REMOUNT|MS_BIND, rw
            "tmpfs = libc.mount(b'tmpfs', b'/tmp', b'tmpfs', ctypes.c_ulong(0), None)\n"
            "try:\n    os.chroot('/tmp')\n    chroot = 'done'\nexcept OSError as exc:\n    chroot = type(exc).__name__\n"
            "try:\n    open('/usr/lib/os-release-pwned', 'w')\n    write = 'done'\nexcept OSError as exc:\n    write = type(exc).__name__\n"
            "print(json.dumps([caps, remount, tmpfs, chroot, write]))\n")
    caps, remount, tmpfs, chroot, write = json.loads(run(code, level).stdout)
    assert caps and not any(caps.values()), caps
    assert (remount, tmpfs, chroot) == (-1, -1, "PermissionError")
    assert write in ("PermissionError", "OSError")  # EROFS


def test_as_root_without_a_spare_uid_the_root_is_still_minimal(level, tmp_path, monkeypatch):
    """Root whose interpreter no spare uid can run: the run keeps uid 0 outside, and the
    namespaces alone must hide the host (only the process cap is lost)."""
    if os.geteuid() != 0:
        pytest.skip("only root runs without a dedicated uid")
    monkeypatch.setattr(sandbox, "_host", lambda host=sandbox._host(): host._replace(dedicated_uid=False))
    assert "processes" not in guarantees(level)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    seen = outcomes(run(attempts([secret, "/etc/passwd", "/root"]) + attempts([tmp_path / "w"], "open(path, 'w')"), level))
    assert {outcome for outcome, _ in seen.values()} == {"FileNotFoundError"}, seen
    result = run("import os\nprint(sorted(os.listdir('/')), os.getuid())", level)
    assert "home" not in result.stdout and "'root'" not in result.stdout


# --- the attacks: network, environment, processes, limits --------------------------------


def test_network_connection_fails(level):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = ("import socket\n"
                f"for host, port in (('127.0.0.1', {port}), ('1.1.1.1', 53)):\n"
                "    try:\n        socket.create_connection((host, port), timeout=1).close()\n"
                "        print('connected', host)\n"
                "    except OSError as exc:\n        print('blocked', host, type(exc).__name__)\n")
        result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert "connected" not in result.stdout and result.stdout.count("blocked") == 2


def test_environment_secrets_are_not_visible(level, monkeypatch, marker):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("VOLTX_TEST_SECRET", marker)
    code = ("import os\nprint(dict(os.environ))\n"
            "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n        data = open(f'/proc/{pid}/environ', 'rb').read()\n"
            "    except OSError:\n        continue\n"
            f"    if {marker.encode()!r} in data or {SECRET.encode()!r} in data:\n        print('LEAK from', pid)\n")
    result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout and "HF_TOKEN" not in result.stdout and "LEAK" not in result.stdout
    assert set(ast.literal_eval(result.stdout.splitlines()[0])) <= {"PATH", "HOME", "LANG", "PWD"}


def test_infinite_loop_is_killed_at_the_wall_deadline(level):
    result = run("import time\nprint('start', flush=True)\nwhile True:\n    time.sleep(0.1)", level)
    assert result.timed_out and result.killed_by == "wall" and not result.ok
    assert result.stdout == "start\n"
    assert TIGHT.wall_s <= result.duration_s < TIGHT.wall_s + 1


def test_cpu_loop_is_killed_by_the_cpu_limit(level):
    result = run("while True:\n    pass", level, cpu_s=1, wall_s=5)
    assert result.killed_by == "cpu" and not result.timed_out and not result.ok
    assert result.duration_s < 5


def test_fork_bomb_is_contained_and_leaves_nothing(level, marker):
    require(level, "processes", "RLIMIT_NPROC does not bind uid 0 and no dedicated uid was possible")
    # First a bounded probe: 3x the cap of sleeping children; if the cap did not hold,
    # stop here rather than set off the real bomb.
    probe = run("import os, time\nok = 0\nfor _ in range(48):\n    try:\n        pid = os.fork()\n"
                "    except OSError:\n        continue\n    if pid == 0:\n        time.sleep(2)\n"
                "        os._exit(0)\n    ok += 1\nprint(ok)", level)
    assert probe.exit_code == 0, probe.stderr
    assert 0 < int(probe.stdout) <= TIGHT.max_processes, "process cap not enforced: bomb not run"

    bomb = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"
    code = ("import os, resource, sys\n"
            "if resource.getrlimit(resource.RLIMIT_NPROC)[0] > 1000:\n    sys.exit('no process cap')\n"
            f"os.execv(sys.executable, [sys.executable, '-I', '-S', '-c', {bomb!r}, {marker!r}])\n")
    result = run(code, level)
    assert result.killed_by == "wall" and result.duration_s < TIGHT.wall_s + 1
    assert survivors(marker) == []


def test_memory_bomb_is_killed(level):
    result = run("chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))", level)
    assert result.killed_by == "memory" and not result.ok and result.duration_s < 3
    one_shot = run("x = bytearray(1 << 30)", level)
    assert one_shot.killed_by == "memory"


def test_orphan_process_does_not_survive(level, marker):
    code = ("import os, sys\n"
            "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
            "    os._exit(0)\n"
            "import time\ntime.sleep(0.3)\nprint('spawned')\n")
    result = run(code, level)
    assert result.ok and result.stdout == "spawned\n"
    assert result.duration_s < 2  # not held up by the daemon, which keeps stdout open
    assert survivors(marker) == []


def test_stdout_flood_is_truncated_and_killed(level):
    start = time.monotonic()
    result = run("while True:\n    print('x' * 1000)", level)
    assert result.truncated and result.killed_by == "output" and not result.ok
    assert 0 < len(result.stdout) <= TIGHT.output_bytes
    assert time.monotonic() - start < 3


def test_file_size_bomb_is_limited(level):
    code = ("import os\ntry:\n    with open('big.bin', 'wb') as f:\n        for _ in range(8):\n"
            "            f.write(b'x' * (1 << 20))\n            f.flush()\n"
            "finally:\n    print(os.path.getsize('big.bin'), flush=True)\n")
    result = run(code, level)
    assert result.killed_by == "file_size" and not result.ok
    assert int(result.stdout) <= TIGHT.file_size_mb << 20
