"""The CodeRunner sandbox's isolation levels: the minimal root a run sees, and the command
that builds it at each level.

Every level gives the program the same view of the file system, built from one plan
(:func:`root_plan`) in new user, mount, pid, network, ipc and uts namespaces::

    /           an empty read-only tmpfs holding only what follows
    the runtime read-only: the interpreter, its prefix's library folders, the system
                library folders (/lib*, /usr/lib*) and /etc/ld.so.cache
    /dev        null, zero, full, random, urandom and the fd links
    /proc       of the run's own pid namespace
    /tmp        a private tmpfs capped at the memory limit
    /sandbox    the run's work directory, read-write, the current directory

so the host's files (/etc/passwd, homes, the user's working tree, other temp files) and
processes are not there to be read. ``bubblewrap`` builds it with ``bwrap``;
``unshare`` with util-linux ``unshare`` and the harness's ``confine()``, which pivots into
it and drops every capability before the untrusted code runs. A machine where neither
works runs nothing (:class:`voltx.engine.sandbox.SandboxUnavailable`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil

LEVELS = ("bubblewrap", "unshare")
"""Strongest first: bubblewrap is the audited tool; unshare needs our own root setup."""
TOOLS = {"bubblewrap": "bwrap", "unshare": "unshare"}
INSTALL = {"bubblewrap": "apt-get install bubblewrap (dnf install bubblewrap on Fedora)",
           "unshare": "apt-get install util-linux (and allow unprivileged user namespaces: "
                      "sysctl kernel.unprivileged_userns_clone=1)"}
WORK_DIR = "/sandbox"
_SYSTEM_LIBS = ("/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
              ("/proc/self/fd/2", "stderr"))

# A plan entry: (kind, source, target). kind: "ro" / "rw" bind of a host path, "dev" bind
# of a device node, "link" a symlink to source, "tmpfs" of source MiB, "proc".
Mount = tuple


@functools.cache
def tool(level: str) -> str | None:
    """The absolute path of the wrapper ``level`` runs (looked up here: the child's PATH
    is the minimal one)."""
    return shutil.which(TOOLS[level])


def missing_tool(level: str) -> str:
    return f"`{TOOLS[level]}` not found; install it: {INSTALL[level]}"


def runtime_mounts(interpreter: str, prefixes: list[str], platlibdir: str = "lib") -> list[Mount]:
    """What the interpreter needs, read-only: its executable, the library folders of its
    prefixes (stdlib, lib-dynload, libpython) and the system's shared libraries."""
    mounts: list[Mount] = []
    for top in _SYSTEM_LIBS:
        if os.path.islink(top):
            mounts.append(("link", os.readlink(top), top))
        elif os.path.isdir(top):
            mounts.append(("ro", top, top))
    for prefix in dict.fromkeys(prefixes):
        for name in dict.fromkeys(("lib", platlibdir)):
            mounts.append(("ro", os.path.join(prefix, name), os.path.join(prefix, name)))
    mounts += [("ro", interpreter, interpreter), ("ro", "/etc/ld.so.cache", "/etc/ld.so.cache")]
    kept: list[Mount] = []
    for kind, source, target in mounts:
        if any(_within(target, t) for _, _, t in kept) or (kind == "ro" and not os.path.exists(source)):
            continue  # already visible through a folder above it, or absent on this system
        kept.append((kind, os.path.realpath(source) if kind == "ro" else source, target))
    return kept


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def root_plan(runtime: list[Mount], work: str, tmp_mb: int) -> list[Mount]:
    """Every mount of the run's root, in order (a mount point's parents come first)."""
    plan = list(runtime)
    plan += [("dev", f"/dev/{name}", f"/dev/{name}") for name in _DEVICES if os.path.exists(f"/dev/{name}")]
    plan += [("link", source, f"/dev/{name}") for source, name in _DEV_LINKS]
    plan += [("proc", None, "/proc"), ("tmpfs", tmp_mb, "/tmp"), ("rw", work, WORK_DIR)]
    return plan


def visible_top(plan: list[Mount]) -> set[str]:
    """The names ``/`` lists inside the sandbox: nothing but the plan's."""
    return {target.strip("/").split("/")[0] for _, _, target in plan}


def command(level: str, interpreter: str, work: str, root: str, plan: list[Mount], config: dict,
            env: dict) -> list[str]:
    """The argv that starts the harness (``work``/harness.py) confined at ``level``;
    ``root`` is an empty directory the unshare level mounts its new root on."""
    def harness(path: str, confine: dict | None) -> list[str]:
        return [interpreter, "-I", "-S", "-B", os.path.join(path, "harness.py"),
                json.dumps({**config, "confine": confine})]

    if level == "unshare":
        # The harness starts on the host's tree (inside fresh namespaces) and pivots
        # into the plan itself before anything untrusted runs.
        return [tool("unshare"), "--user", "--map-root-user", "--mount", "--net", "--pid", "--ipc", "--uts",
                "--fork", "--kill-child", "--",
                *harness(work, {"root": root, "cwd": WORK_DIR, "mounts": plan})]
    argv = [tool("bubblewrap"), "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    flags = {"ro": "--ro-bind", "rw": "--bind", "dev": "--dev-bind", "link": "--symlink"}
    for kind, source, target in plan:
        if kind == "proc":
            argv += ["--proc", target]
        elif kind == "tmpfs":
            argv += ["--size", str(source << 20), "--tmpfs", target]
        else:
            argv += [flags[kind], source, target]
    argv += ["--remount-ro", "/", "--chdir", WORK_DIR, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return [*argv, "--", *harness(WORK_DIR, None)]
