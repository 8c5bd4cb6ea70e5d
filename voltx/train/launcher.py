"""``voltx run --nproc-per-node N``: start a run as N processes through ``torch.distributed.run``.

The launcher checks what it can before any process starts (nothing is written to the run when
it refuses), then hands the run's own ``voltx run`` command to torch's launcher, in process, as
torchtune's ``tune run`` does: standalone rendezvous on one node, c10d across nodes. The
workers find RANK/WORLD_SIZE in their environment (:mod:`voltx.train.distributed`).

Rules, each written once here:
- backend: ``hardware.device = "cpu"``, or ``auto`` on a machine without CUDA, trains on the CPU
  with gloo; a CUDA run uses NCCL, one GPU per process, and refuses more processes per node
  than GPUs it sees;
- a resume needs the world size (nodes x processes) of its checkpoint; another one is refused;
- ``hardware.strategy = "fsdp"`` for a phase that shards nothing or too little is refused
  (:func:`voltx.train.sharding.check`);
- exit code: rank 0's (75 after a stop, 0, 78 ...); a process killed by a signal is 86; the
  launcher's own stop signal (SIGTERM/SIGUSR1/SIGHUP/SIGINT) is passed to every process, which
  checkpoint at the same step, and it exits with the code run.json records;
- an unreachable rendezvous endpoint fails after ``--rdzv-timeout`` seconds with 69;
- a phase that starts runs (``PhaseSpec.starts_runs``: curriculum, agentforge) is not launched
  N times: it runs once and hands the options to each run it starts (one node only).

No torch at import: ``voltx run`` imports this for its options.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from voltx.errors import (EXIT_INTERRUPTED, EXIT_PREEMPTED, EXIT_RANK_LOST, EXIT_UNAVAILABLE, UsageError,
                          VoltxError)

STOP_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"
SHUTDOWN_GRACE_S = 300
"""Seconds the processes get to write their stop checkpoint after the launcher passed a signal on."""


@dataclass(frozen=True)
class Launch:
    """The distributed options of ``voltx run`` (all 1/0/None: one process, no launcher)."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_timeout: int = 120

    @property
    def world(self) -> int:
        return self.nproc_per_node * self.nnodes

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def argv(self) -> list[str]:
        """The ``voltx run`` options that repeat this launch (for --tmux and the console)."""
        if not self.distributed:
            return []
        out = ["--nproc-per-node", str(self.nproc_per_node)]
        if self.nnodes > 1:
            out += ["--nnodes", str(self.nnodes), "--node-rank", str(self.node_rank), "--rdzv-endpoint", str(self.rdzv_endpoint),
                    "--rdzv-timeout", str(self.rdzv_timeout)]
        return out

    def check(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise UsageError("--nproc-per-node and --nnodes must be at least 1.")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise UsageError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (a port on node 0 every node can reach), "
                             "given the same on every node.")
        if not 0 <= self.node_rank < self.nnodes:
            raise UsageError(f"--node-rank {self.node_rank} is not a node of --nnodes {self.nnodes} (0..{self.nnodes - 1}).")
        if self.rdzv_endpoint and not _host_port(self.rdzv_endpoint):
            raise UsageError(f"--rdzv-endpoint {self.rdzv_endpoint!r} is not HOST:PORT (e.g. 10.0.0.1:29400).")


def _host_port(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit())


def check_world_size(run_dir: Path, world: int) -> None:
    """Refuse to resume ``run_dir`` with a world size other than its newest checkpoint's."""
    from voltx.runs.checkpoints import newest_intact

    checkpoint, _ = newest_intact(Path(run_dir) / "checkpoints")
    if checkpoint is None:
        return
    saved = int(checkpoint.state.get("world_size", 1))
    if saved != world:
        how = "one process (no --nproc-per-node)" if saved == 1 else f"{saved} processes in all (--nproc-per-node x --nnodes)"
        raise UsageError(f"run {Path(run_dir).name} was checkpointed at step {checkpoint.step} by {how}; this resume asks for {world}. "
                         f"Resume it with the same number of processes: each rank's share of the data and its RNG state are "
                         f"in the checkpoint, so another world size cannot continue it exactly. Or start a new run.")


def check_fsdp(phase, cfg, world: int) -> None:
    """Refuse ``hardware.strategy = "fsdp"`` for a phase that shards nothing or too little (ConfigError, 78)."""
    from voltx.plugin_specs import resolve
    from voltx.train.sharding import check

    modules = resolve(phase.sharded)(cfg.phases[phase.name]) if phase.sharded is not None else {}
    check(modules, world, cfg.hardware.fsdp_min_parameters, f"phase {phase.name}")


def choose_backend(device: str, nproc_per_node: int) -> tuple[str, str]:
    """(backend, the line that says why) for ``hardware.device`` and processes per node."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "cpu" or (device == "auto" and gpus == 0):
        why = "hardware.device = cpu" if device == "cpu" else "no CUDA device here (hardware.device = auto)"
        return "gloo", f"{nproc_per_node} processes on the CPU with gloo ({why})"
    if gpus < nproc_per_node:
        raise UsageError(f"--nproc-per-node {nproc_per_node} but this machine has {gpus} CUDA device(s) (one per process; "
                         f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). Use --nproc-per-node {gpus or 1}, "
                         "or hardware.device=cpu to train on the CPU with gloo.")
    return "nccl", f"{nproc_per_node} processes, one CUDA device each, with NCCL"


def launch_request(req, spec: Launch) -> int:
    """``voltx run ... --nproc-per-node N``: check, then launch the run's own command as N processes
    (a new run gets its id here, so the launcher knows its directory)."""
    from dataclasses import replace

    from voltx.plugins import load_plugins
    from voltx.runs.layout import new_run_id
    from voltx.train.runner import plan_config

    plugins = load_plugins()
    plan = req.plan(plugins)
    if plugins.get("phases", plan.phase).starts_runs:
        return _forward_to_children(req, spec, plan, plugins)
    if plan.resume_dir is None and spec.nnodes == 1:
        plan = replace(plan, root=plan.root.absolute(), run_id=plan.run_id or new_run_id())
    cfg = plan_config(plan, plugins)
    if plan.resume_dir is not None:
        check_world_size(plan.resume_dir, spec.world)
    if cfg.hardware.strategy == "fsdp":  # refused here, before the run exists (the loop checks each stage too, for torchrun itself)
        check_fsdp(plugins.get("phases", plan.phase), cfg, spec.world)
    backend, why = choose_backend(cfg.hardware.device, spec.nproc_per_node)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    say(f"voltx: {why}, through torch.distributed.run ({spec.nnodes} node(s), world size {spec.world})")
    worker = [*plan.command(progress=req.progress), *(w for s in req.sinks for w in ("--sink", s))]
    return launch(spec, worker, backend=backend, timeout_s=cfg.hardware.collective_timeout, run_dir=plan.run_dir, say=say)


def _forward_to_children(req, spec: Launch, plan, plugins) -> int:
    """A phase that starts runs (a chain: curriculum, agentforge): it runs here, once, and each run
    it starts is given the options, so each phase trains as N processes.

    Several nodes are refused: the chain on each node would be a run of its own, and a phase's
    run directory is the one node 0's rank 0 picks, so the chain on another node could find
    neither the phase's deliverables (its gate) nor its artifacts (the hand-over to the next)."""
    from dataclasses import replace

    from voltx.train.runner import execute, plan_config

    if spec.nnodes > 1:
        raise UsageError(f"voltx run {plan.phase} starts each phase as a run of its own, whose run directory node 0 picks, "
                         f"so a {plan.phase} on each node could not find its phases' results: it cannot span --nnodes {spec.nnodes}. "
                         f"Run it on one node (--nproc-per-node N), "
                         f"or its phases one by one on every node (voltx run <phase> --nnodes {spec.nnodes} ...).")
    cfg = plan_config(plan, plugins)
    _, why = choose_backend(cfg.hardware.device, spec.nproc_per_node)  # the phases get [hardware] from it: refuse here, before its run exists
    print(f"voltx: {plan.phase} runs as one process; each phase it starts trains as {why}", file=sys.stderr, flush=True)
    return execute(replace(req, launch=tuple(spec.argv())), plugins)


def launch(spec: Launch, worker_argv: list[str], *, backend: str, timeout_s: float, run_dir: Path | None, say) -> int:
    """Run ``python -m voltx <worker_argv>`` as ``spec.nproc_per_node`` processes on this node and
    return the job's exit code (module docstring)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    args = ["--nproc-per-node", str(spec.nproc_per_node), "--max-restarts", "0", "--monitor-interval", "0.2",
            "--signals-to-handle", STOP_SIGNALS, "--shutdown-timeout", str(SHUTDOWN_GRACE_S)]
    if spec.nnodes == 1:  # what torchrun's --standalone sets (its run() does it, config_from_args does not)
        args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0", "--rdzv-id", str(uuid.uuid4())]
    else:
        args += ["--nnodes", str(spec.nnodes), "--node-rank", str(spec.node_rank), "--rdzv-backend", "c10d",
                 "--rdzv-endpoint", spec.rdzv_endpoint, "--rdzv-id", "voltx",
                 "--rdzv-conf", f"join_timeout={spec.rdzv_timeout},read_timeout={spec.rdzv_timeout}"]
    config, cmd, cmd_args = config_from_args(parse_args([*args, "-m", "voltx", *worker_argv]))
    os.environ.update({"VOLTX_DIST_BACKEND": backend, "VOLTX_DIST_TIMEOUT_S": str(timeout_s)})
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # our lines say what happened, without its tracebacks
    try:
        elastic_launch(config, cmd)(*cmd_args)
        return 0
    except ChildFailedError as exc:
        code, why = job_exit_code({rank: f.exitcode for rank, f in exc.failures.items()})
        if why:
            say(f"voltx: {why}; the job stopped (exit {code}). The last committed checkpoint is kept: "
                "resume with --resume auto and the same --nproc-per-node.")
        return code
    except SignalException as exc:
        return _recorded_exit(run_dir) or (EXIT_PREEMPTED if exc.sigval != signal.SIGINT else EXIT_INTERRUPTED)
    except VoltxError:
        raise
    except Exception as exc:  # rendezvous: the endpoint cannot be reached, or not every node joined in time
        if spec.nnodes == 1:
            raise
        raise VoltxError(f"rendezvous at {spec.rdzv_endpoint} failed within {spec.rdzv_timeout} s ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). Check that node 0 runs the same command, "
                         f"that {spec.rdzv_endpoint} is its address and the port is open, or raise --rdzv-timeout.",
                         exit_code=EXIT_UNAVAILABLE) from None


def job_exit_code(codes: dict[int, int]) -> tuple[int, str | None]:
    """The job's exit code from its failed ranks' exit codes (negative: killed by that signal),
    and a line when a rank was lost."""
    killed = {r: c for r, c in codes.items() if c < 0}
    if killed:
        # The launcher stops the survivors with SIGTERM once one process died: the cause is a
        # process killed by another signal (SIGKILL from the OOM killer, a segfault) when there is one.
        rank, code = min(killed.items(), key=lambda rc: (rc[1] == -signal.SIGTERM, rc[0]))
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return EXIT_RANK_LOST, f"rank {rank} was killed by {name}"
    if codes.get(0, EXIT_RANK_LOST) != EXIT_RANK_LOST:
        return codes[0], None
    own = sorted((r, c) for r, c in codes.items() if c != EXIT_RANK_LOST)
    if own:
        return own[0][1], f"rank {own[0][0]} failed with exit {own[0][1]} (its output above says why)"
    return EXIT_RANK_LOST, None


def _recorded_exit(run_dir: Path | None) -> int | None:
    """The exit code rank 0 recorded in run.json, when this attempt has ended."""
    if run_dir is None:
        return None
    try:
        manifest = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    code = manifest.get("exit_code")
    return int(code) if isinstance(code, int) and manifest.get("status") != "running" else None

