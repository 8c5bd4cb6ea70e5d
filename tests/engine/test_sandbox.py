"""CodeRunner sandbox: the attack suite, run at every isolation level this machine offers.

Each attack runs under tight limits and must be contained within them with nothing left
running. Where a level does not promise a protection (``guarantees``), the test skips and
says so: the rlimits fallback, for one, does not isolate the network.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import socket
import time
import uuid

import psutil
import pytest

from voltx.engine.sandbox import (
    ISOLATION_LEVELS,
    SandboxLimits,
    available_isolations,
    detect_isolation,
    guarantees,
    run_python,
)

LEVELS = available_isolations()
TIGHT = SandboxLimits(wall_s=3, cpu_s=2, memory_mb=256, file_size_mb=1, max_processes=16,
                      output_bytes=10_000)


@pytest.fixture(params=LEVELS)
def level(request):
    return request.param


@pytest.fixture
def marker():
    """A string to embed in sandboxed command lines, to find survivors by."""
    return f"voltx-sandbox-test-{uuid.uuid4().hex}"


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


# --- API ----------------------------------------------------------------------------------


def test_detects_the_strongest_working_level():
    assert detect_isolation() == LEVELS[0]
    assert set(LEVELS) <= set(ISOLATION_LEVELS) and LEVELS[-1] == "rlimits"


def test_rlimits_fallback_admits_what_it_does_not_isolate():
    assert {"network", "private_fs"}.isdisjoint(guarantees("rlimits"))
    assert {"network", "private_fs", "no_orphans"} <= guarantees("bubblewrap")
    assert {"env", "limits"} <= guarantees("rlimits")
    with pytest.raises(ValueError, match="unknown isolation"):
        guarantees("chroot")


@pytest.mark.parametrize("bad", [{"wall_s": 0}, {"cpu_s": 1.5}, {"max_processes": -1},
                                 {"memory_mb": 8}, {"output_bytes": True}])
def test_bad_limits_are_our_error(bad):
    with pytest.raises(ValueError, match="SandboxLimits"):
        run_python("pass", limits=dataclasses.replace(TIGHT, **bad))


def test_unknown_isolation_is_our_error():
    with pytest.raises(ValueError, match="not available"):
        run_python("pass", isolation="chroot")


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


# --- the attacks ---------------------------------------------------------------------------


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


def test_network_connection_fails(level):
    require(level, "network", "no network namespace; the program can reach the network")
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


def test_writes_outside_the_work_dir_fail(level, tmp_path, marker):
    require(level, "foreign_files", "runs as the caller's own uid, whose files it may write")
    targets = [tmp_path / "escaped.txt", f"/etc/{marker}", f"/usr/lib/{marker}"]
    code = (f"for path in {[str(t) for t in targets]!r}:\n"
            "    try:\n        open(path, 'w').write('pwned')\n        print('wrote', path)\n"
            "    except OSError as exc:\n        print('denied', type(exc).__name__)\n"
            "open('inside.txt', 'w').write('fine')\nprint('inside ok')\n")
    result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert "inside ok" in result.stdout
    assert not any(os.path.exists(t) for t in targets)
    assert f"wrote /usr/lib/{marker}" not in result.stdout


def test_files_outside_cannot_be_deleted(level, tmp_path):
    require(level, "foreign_files", "runs as the caller's own uid, whose files it may delete")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    code = ("import os, shutil\n"
            f"for attack in (lambda: os.remove({str(victim)!r}), lambda: shutil.rmtree({str(tmp_path)!r})):\n"
            "    try:\n        attack()\n        print('deleted')\n"
            "    except OSError as exc:\n        print('denied', type(exc).__name__)\n")
    result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert victim.read_text() == "keep me"


def test_environment_secrets_are_not_visible(level, monkeypatch, marker):
    secret = f"s3cr3t-{marker}"
    monkeypatch.setenv("VOLTX_TEST_SECRET", secret)
    scan = "foreign_procs" in guarantees(level)
    code = ("import os\nprint(dict(os.environ))\n"
            f"if {scan!r}:\n"
            "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
            "        try:\n            data = open(f'/proc/{pid}/environ', 'rb').read()\n"
            "        except OSError:\n            continue\n"
            f"        if {marker.encode()!r} in data:\n            print('LEAK from', pid)\n")
    result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert secret not in result.stdout and "VOLTX_TEST_SECRET" not in result.stdout
    assert "LEAK" not in result.stdout
    assert set(ast.literal_eval(result.stdout.splitlines()[0])) <= {"PATH", "HOME", "LANG", "PWD", "VOLTX_SANDBOX"}
    if not scan:
        pytest.skip(f"isolation {level!r}: other processes' environments are readable (same uid, no pid namespace)")


def test_the_users_home_is_hidden(level):
    if not {"private_fs", "foreign_files"} & guarantees(level):
        pytest.skip(f"isolation {level!r} runs as the caller's uid: its home is readable")
    home = os.path.expanduser("~")
    code = ("import os\ntry:\n"
            f"    entries = os.listdir({home!r})\n    print('visible' if entries else 'hidden', entries)\n"
            "except OSError as exc:\n    print('hidden', type(exc).__name__)\n")
    result = run(code, level)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("hidden"), result.stdout


def test_orphan_process_does_not_survive(level, marker):
    require(level, "no_orphans", "no pid namespace or dedicated uid to find a daemonized child by")
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
