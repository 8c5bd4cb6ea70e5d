"""``voltx run PHASE [key=value ...]``: run a curriculum phase headless (or in tmux with --tmux)."""

from __future__ import annotations

import argparse
import dataclasses
import os

from voltx.runs.layout import RUNS_DIR_PRECEDENCE


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a phase (headless): checkpoints, exact resume, alerts, deliverables",
        description="Run a curriculum phase as a run in the run store. Overrides are dotted keys "
        "relative to the phase's table (encoder.lr=3e-4) or absolute (hardware.device=cpu); a key of the "
        "phase's own table may also be given as an option (--role creative is role=creative).",
    )
    p.add_argument("phase", help="phase name (see `voltx phases`)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. encoder.lr=3e-4 (default: none)")
    p.add_argument("--config", metavar="FILE", help="config file (default: ./training_config.toml when present)")
    p.add_argument("--preset", metavar="NAME", help="a preset of the phase's table, e.g. quick (default: none, the table as the config file sets it)")
    p.add_argument("--resume", metavar="auto|RUN", help="resume the latest unfinished run of this phase (auto) or RUN; a preset/overrides given with it must be the run's own (a requeued job re-runs its command); nothing to resume starts a new run with them (default: start a new run)")
    p.add_argument("--runs-dir", metavar="DIR", help=f"run store root ({RUNS_DIR_PRECEDENCE})")
    p.add_argument("--progress", choices=["auto", "rich", "plain"], default="auto", help="progress display (default: auto, a rich bar on a TTY and plain lines otherwise)")
    p.add_argument("--sink", action="append", default=[], metavar="NAME", help="also send the run's records to this sink (repeatable; added to [run].sinks): wandb, tensorboard, mlflow, csv or a plugin's (see `voltx plugins`) (default: [run].sinks only)")
    g = p.add_argument_group("several processes (torch.distributed.run; README: Multi-GPU)")
    g.add_argument("--nproc-per-node", type=int, default=1, metavar="N", help="train as N processes on this node: one per GPU with NCCL, or on the CPU with gloo when hardware.device=cpu or there is no GPU (default: 1, no launcher)")
    g.add_argument("--nnodes", type=int, default=1, metavar="M", help="nodes in the job; run the same command on each (default: 1)")
    g.add_argument("--node-rank", type=int, default=0, metavar="R", help="this node's rank, 0..M-1 (default: 0)")
    g.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="c10d rendezvous on node 0, the same on every node (default: none; needed with --nnodes > 1)")
    g.add_argument("--rdzv-timeout", type=int, default=120, metavar="S", help="seconds to wait for every node at the rendezvous before exit 69 (default: 120)")
    p.add_argument("--tmux", action="store_true", help="start the run detached in a new tmux session voltx-<run-id> and print how to attach (default: run in this terminal)")
    # Launchers (voltx-console, --tmux) must know the run's directory before the process starts.
    p.add_argument("--run-id", metavar="ID", help=argparse.SUPPRESS)
    p.set_defaults(_run=run)


def phase_options(phase: str, extra: list[str], plugins) -> list[str] | None:
    """``--key value`` / ``--key=value`` naming a top-level field of the phase's table, as the
    override ``key=value`` (``voltx run trio --role creative``); bare ``key=value`` pass through.
    None when anything else is left, which the caller reports as an unrecognised argument."""
    spec = plugins.specs("phases").get(phase) if plugins is not None else None
    if spec is None:
        return None
    names = {f.name for f in dataclasses.fields(spec.config_class)}
    out: list[str] = []
    items = iter(extra)
    for item in items:
        if not item.startswith("-"):
            if "=" not in item:
                return None
            out.append(item)
            continue
        key, sep, value = item.lstrip("-").partition("=")
        key = key.replace("-", "_")
        if not item.startswith("--") or key not in names:
            return None
        if not sep:
            value = next(items, None)
            if value is None:
                return None
        out.append(f"{key}={value}")
    return out


def launch_options(args: argparse.Namespace):
    from voltx.train.launcher import Launch

    spec = Launch(args.nproc_per_node, args.nnodes, args.node_rank, args.rdzv_endpoint, args.rdzv_timeout)
    spec.check()
    return spec


def run(args: argparse.Namespace) -> int:
    spec = launch_options(args)
    if args.tmux:
        return _run_in_tmux(args, spec)
    req = _request(args)
    if spec.distributed and "WORLD_SIZE" not in os.environ:  # (a worker the launcher started has it)
        from voltx.train.launcher import launch_request

        return launch_request(req, spec)
    from voltx.train.runner import execute

    return execute(req)


def _request(args: argparse.Namespace):
    from voltx.train.runner import RunRequest

    return RunRequest(
        phase=args.phase,
        config_path=args.config,
        preset=args.preset,
        overrides=tuple(args.overrides),
        resume=args.resume,
        runs_dir=args.runs_dir,
        progress=args.progress,
        argv=tuple(["voltx", *args._argv]),
        run_id=args.run_id,
        sinks=tuple(args.sink),
    )


def _run_in_tmux(args: argparse.Namespace, spec) -> int:
    """Hand the run to a detached tmux session and return at once (DESIGN §7): the same plan
    ``voltx run`` would make here, carried out by a child ``voltx run`` in the session."""
    from voltx.errors import UsageError
    from voltx.plugins import load_plugins
    from voltx.runs.launch import start_planned, tmux_available, tmux_base
    from voltx.runs.plan import plan_run
    from dataclasses import replace

    if not tmux_available():
        raise UsageError("--tmux needs tmux, which is not installed here: install it, or run without --tmux.")
    if args.run_id is not None:
        raise UsageError("--run-id is chosen by --tmux itself; drop it.")
    if args.sink:  # the session's command is the plan's (phase, preset, overrides): name sinks there
        import json

        raise UsageError(f"--sink is not passed on by --tmux; give the sinks as an override instead: 'run.sinks={json.dumps(args.sink)}'.")
    # An unknown phase or a refused resume fails here, not inside the tmux session.
    plan = plan_run(args.phase, plugins=load_plugins(), config=args.config, preset=args.preset, overrides=args.overrides,
                    runs_dir=args.runs_dir, resume=args.resume)
    launched = start_planned(replace(plan, launch=tuple(spec.argv())), use_tmux=True)
    print(f"voltx: run {launched.run_id} started in tmux session {launched.tmux_session}")
    print(f"  run directory: {launched.run_dir}")
    print(f"  attach:        {' '.join([*tmux_base(), 'attach', '-t', launched.tmux_session])}")
    return 0
