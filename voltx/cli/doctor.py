"""``voltx doctor``: check the machine before a long run (torch, CUDA, NVML, sandbox, disk, plugins).

Each check prints ok / warn / fail with what to do; the exit code is 0 unless a check
fails. Meant for the first minute on a rented GPU box.
"""

from __future__ import annotations

import json
import shutil
import sys


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="check this machine: torch, CUDA/GPUs, NVML, sandbox isolation, disk, plugins")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--runs-dir", metavar="DIR", help="run store root to check for free space")
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
        f"{free:.1f} GiB free for the runs root {root}" + ("" if free >= 10 else "; checkpoints of big phases need tens of GiB"))
    ps = load_plugins()
    if ps.failures:
        add("plugins", "warn", "; ".join(f"{f.plugin}: {f.error}" for f in ps.failures))
    else:
        add("plugins", "ok", f"{len(ps.plugins)} loaded, phases: {', '.join(ps.specs('phases'))}")
    return out


def run(args) -> int:
    checks = _checks(args)
    if args.json:
        print(json.dumps({"checks": checks}, indent=1))
    else:
        for c in checks:
            print(f"{c['status']:>4}  {c['check']:<8} {c['detail']}")
    return 1 if any(c["status"] == "fail" for c in checks) else 0
