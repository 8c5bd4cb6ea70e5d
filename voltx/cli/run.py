"""``voltx run PHASE [key=value ...]``: run a curriculum phase headless."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run a phase (headless): checkpoints, exact resume, alerts, deliverables",
        description="Run a curriculum phase as a run in the run store. Overrides are dotted keys "
        "relative to the phase's table (encoder.lr=3e-4) or absolute (hardware.device=cpu).",
    )
    p.add_argument("phase", help="phase name (see `voltx phases`)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. encoder.lr=3e-4")
    p.add_argument("--config", metavar="FILE", help="config file (default: ./training_config.toml when present)")
    p.add_argument("--preset", metavar="NAME", help="a preset of the phase's table, e.g. quick")
    p.add_argument("--resume", metavar="auto|RUN", help="resume the latest unfinished run of this phase (auto) or RUN")
    p.add_argument("--runs-dir", metavar="DIR", help="run store root (default: [paths].runs_dir, VOLTX_RUNS_DIR, ./runs)")
    p.add_argument("--progress", choices=["auto", "rich", "plain"], default="auto", help="progress display (auto: rich on a TTY)")
    p.set_defaults(_run=run)


def run(args: argparse.Namespace) -> int:
    from voltx.train.runner import RunRequest, execute

    req = RunRequest(
        phase=args.phase,
        config_path=args.config,
        preset=args.preset,
        overrides=tuple(args.overrides),
        resume=args.resume,
        runs_dir=args.runs_dir,
        progress=args.progress,
        argv=tuple(["voltx", *args._argv]),
    )
    return execute(req)
