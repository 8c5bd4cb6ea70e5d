"""``voltx doctor``: check the machine before a long run (torch, CUDA, NVML, sandbox, disk, plugins).

Each check prints ok / warn / fail with what to do; the exit code is 0 unless a check
fails, then 84 (EXIT_CHECK_FAILED: 1 means a bug in voltx, which a failed check is not).
Meant for the first minute on a rented GPU box.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from voltx.runs.layout import RUNS_DIR_PRECEDENCE


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check this machine: torch, CUDA/GPUs, NVML, sandbox isolation, disk, runs folder, config, plugins",
                       description="Check this machine before a long run; exit 84 when a check fails.")
    p.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")
    p.add_argument("--runs-dir", metavar="DIR", help=f"run store root to check for free space and write access ({RUNS_DIR_PRECEDENCE})")
    p.set_defaults(_run=run)


def _checks(args) -> list[dict]:
    from voltx.cli.common import root_from
    from voltx.plugins import load_plugins

    out: list[dict] = []

    def add(name: str, status: str, detail: str) -> None:
        out.append({"check": name, "status": status, "detail": detail})

    add("python", "ok", sys.version.split()[0])
    try:
        import torch

        add("torch", "ok", f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})")
        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            add("cuda", "ok", f"{len(names)} device(s): {', '.join(names)}")
        else:
            add("cuda", "warn", "no CUDA device: runs use the CPU (hardware.device=auto); install a CUDA build of torch on a GPU box")
        add("gpus", "ok", _gpus_a_run_uses(torch))
    except Exception as exc:  # a broken torch install is exactly what doctor is for
        add("torch", "fail", f"cannot import torch: {exc}. Reinstall with `pip install torch`.")
    try:
        import pynvml

        pynvml.nvmlInit()
        add("nvml", "ok", f"driver {pynvml.nvmlSystemGetDriverVersion()}, {pynvml.nvmlDeviceGetCount()} GPU(s)")
        pynvml.nvmlShutdown()
    except Exception as exc:
        add("nvml", "warn", f"no NVIDIA driver reachable ({type(exc).__name__}); GPU telemetry will be empty")
    try:
        from voltx.engine.sandbox import describe_isolation

        add("sandbox", *describe_isolation())  # the level in use and what it protects, or what to install
    except Exception as exc:
        add("sandbox", "warn", f"sandbox check failed: {exc}")
    root = root_from(args)
    probe = root if root.exists() else root.resolve().parent
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1024**3
    add("disk", "ok" if free >= 10 else "warn" if free >= 2 else "fail",
        f"{free:.1f} GiB free for the runs root {root.absolute()}" + ("" if free >= 10 else "; checkpoints of big phases need tens of GiB"))
    add("runs", *_runs_root_check(root))
    add("config", *_config_check())
    ps = load_plugins()
    if ps.failures:
        add("plugins", "warn", "; ".join(f"{f.plugin}: {f.error}" for f in ps.failures))
    else:
        add("plugins", "ok", f"{len(ps.plugins)} loaded, phases: {', '.join(ps.specs('phases'))}")
    return out


def _gpus_a_run_uses(torch) -> str:
    """What ``voltx run`` and ``--nproc-per-node N`` would train on here (the launcher's rule)."""
    import os

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n == 0:
        return "a run trains on the CPU; --nproc-per-node N starts N CPU processes with gloo" + where
    first = torch.cuda.get_device_name(0)
    return (f"a run trains on cuda:0 ({first}); --nproc-per-node N uses cuda:0..cuda:N-1 with NCCL, N up to {n}{where}; "
            "hardware.device=cpu uses CPU processes with gloo")


def _runs_root_check(root: Path) -> tuple[str, str]:
    """Can a run create its directory under ``root``? (The console's launch check, one rule.)"""
    from voltx.console.data import root_state  # textual-free data layer

    state, root = root_state(root), root.absolute()  # "the runs root runs" says less than its path
    if state.exists and state.writable:
        return "ok", f"runs root {root} is writable"
    if state.writable:
        return "ok", f"runs root {root} does not exist yet: the first run creates it"
    what = "is not a directory" if root.exists() and not root.is_dir() else "is not writable" if state.exists else "cannot be created"
    return "fail", f"runs root {root} {what}: runs cannot start. Fix its permissions, or choose another with --runs-dir DIR or VOLTX_RUNS_DIR."


def _config_check() -> tuple[str, str]:
    """./training_config.toml parses against every phase's schema (every problem listed)."""
    from voltx.config import DEFAULT_CONFIG_NAME, load_config
    from voltx.errors import VoltxError

    local = Path(DEFAULT_CONFIG_NAME)
    if not local.exists():
        return "ok", f"no ./{DEFAULT_CONFIG_NAME}: runs use the curriculum shipped with voltx"
    try:
        cfg = load_config(local)  # against the installed phases' tables
    except VoltxError as exc:
        problems = getattr(exc, "problems", [str(exc)])
        fix = f"fix it (`voltx config validate {DEFAULT_CONFIG_NAME}` lists the same), or move it away"
        return "fail", f"{len(problems)} problem(s) in ./{DEFAULT_CONFIG_NAME}; {fix}:\n" + "\n".join(problems)
    return "ok", f"./{DEFAULT_CONFIG_NAME}: {len(cfg.phases)} phase tables, {sum(len(p) for p in cfg.presets.values())} presets"


def run(args) -> int:
    from voltx.errors import EXIT_CHECK_FAILED

    checks = _checks(args)
    if args.json:
        print(json.dumps({"checks": checks}, indent=1))
    else:
        for c in checks:
            first, *more = c["detail"].splitlines()  # a multi-line detail (every config problem) stays aligned
            print(f"{c['status']:>4}  {c['check']:<8} {first}")
            for line in more:
                print(f"{'':15}{line}")
    return EXIT_CHECK_FAILED if any(c["status"] == "fail" for c in checks) else 0
