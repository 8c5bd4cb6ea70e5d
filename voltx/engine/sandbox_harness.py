"""The program that runs inside the CodeRunner sandbox (standard library only, Python 3.8+).

Never imported by voltx itself: :mod:`voltx.engine.sandbox` copies this file into the run's
work directory and starts it as ``python -I -S -B harness.py <config json>``. In order, it

1. at the ``unshare`` level, confines itself (:func:`confine`): builds the minimal root the
   host planned (:mod:`voltx.engine.sandbox_levels`) in a tmpfs, pivots into it, detaches the
   host's tree and drops every capability, so the untrusted code never sees the host;
2. as pid 1 of its namespace, forks and stays behind as the reaper;
3. sets the resource limits, then runs the code and its tests, reporting test results on a
   private pipe.

Nothing untrusted runs before step 3; a failure in steps 1-2 ends the run with exit 125.
"""

import ast
import json
import os
import resource
import sys
import traceback

CONFINE_FAILED = 125

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 28, 38, 47
# noroot + no_setuid_fixup + keep_caps, each locked: uid 0 inside regains nothing on exec
SECUREBITS_LOCKED = 0x2F
# pivot_root has no libc wrapper; asm-generic architectures share 41
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "ppc64": 203,
              "s390x": 217, "i686": 217, "armv7l": 218}


def confine(plan):
    """Enter the planned root and drop all privilege (we are root of a fresh user, mount
    and pid namespace here, with the host's tree still mounted)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def call(name, *args):
        if getattr(libc, name)(*args) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "%s%r: %s" % (name, args, os.strerror(err)))

    def mount(source, target, fstype, flags, data=None):
        args = [None if a is None else a.encode() for a in (source, target, fstype, data)]
        call("mount", args[0], args[1], args[2], ctypes.c_ulong(flags), args[3])

    def prctl(*args):
        call("prctl", *(ctypes.c_ulong(a) for a in args + (0,) * (5 - len(args))))

    root = plan["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates to the host
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for kind, source, target in plan["mounts"]:
        path = root + target
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind == "link":
            os.symlink(source, path)
            continue
        if kind in ("ro", "rw", "dev") and not os.path.isdir(source):
            open(path, "w").close()  # a file is mounted on a file
        else:
            os.makedirs(path, exist_ok=True)
        if kind == "tmpfs":
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=%dm,mode=1777" % source)
        elif kind == "proc":
            mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        else:
            mount(source, path, None, MS_BIND)
            if kind == "ro":
                mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | _locked_flags(source))
    mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(root)
    machine = os.uname().machine
    if machine not in PIVOT_ROOT:
        raise OSError("pivot_root: syscall number unknown on %s (use bubblewrap there)" % machine)
    call("syscall", ctypes.c_long(PIVOT_ROOT[machine]), b".", b".")
    call("umount2", b".", ctypes.c_int(MNT_DETACH))  # the host's tree, stacked on ours
    os.chdir("/")
    os.chdir(plan["cwd"])
    # Drop every capability for good: the bounding set (so exec cannot restore them),
    # the ambient set, then effective/permitted/inheritable.
    prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    prctl(PR_CAP_AMBIENT, 4)  # PR_CAP_AMBIENT_CLEAR_ALL
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    call("capset", header, (ctypes.c_uint32 * 6)())
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    with open("/proc/self/status") as f:
        held = [line for line in f if line.startswith(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"))
                and int(line.split()[1], 16)]
    if held:
        raise OSError("capabilities still held after the drop: %s" % " ".join(held))


def _locked_flags(path):
    """The host mount's flags a user namespace may not clear on remount (else EPERM)."""
    flags = os.statvfs(path).f_flag
    kept = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    return kept | (MS_RELATIME if flags & 4096 else 0)  # ST_RELATIME


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
    try:
        if cfg["confine"] is not None:
            confine(cfg["confine"])
        if os.getpid() == 1:
            reap_as_init()
    except Exception as exc:  # untrusted code has not run: say why and stop
        sys.stderr.write("voltx sandbox: could not confine the run: %s\n" % exc)
        return CONFINE_FAILED
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


if __name__ == "__main__":
    sys.exit(main())
