"""``voltx export RUN --to csv|jsonl|tensorboard|wandb|mlflow [--output PATH] [--deliverables]``: a run as
files or a tracker's run, or its verdicts as files."""

from __future__ import annotations

from voltx.cli.common import add_runs_dir, root_from


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's metrics to CSV or JSONL, or replay the run into TensorBoard, W&B or MLflow",
        description="Write a run's per-step metrics (steps superseded by a resume dropped) as CSV "
        "(one row per step, nested keys as losses/loss) or JSONL, or replay the whole run (steps, evaluations, "
        "verdicts, alerts, checkpoints, its end) into the sink of the same name: TensorBoard event files, an "
        "offline W&B run (upload it with `wandb sync`), an MLflow run (each an optional extra: "
        "pip install \"voltx[tensorboard]\"). "
        "Lines of metrics.jsonl that are not step records (wrong types, no step, cut off by a crash) "
        "are left out and counted. With --deliverables: the run's deliverable verdicts instead, each "
        "beside its strongest no-model baseline, margin and ablations.",
    )
    p.add_argument("run", metavar="RUN", help="run directory, id prefix, or latest")
    p.add_argument("--to", required=True, choices=["csv", "jsonl", "tensorboard", "wandb", "mlflow"], help="output format or tracker")
    p.add_argument("--output", "-o", metavar="PATH", help="file; a directory for tensorboard and wandb; an MLflow tracking URI "
                   "or SQLite file for mlflow (default: <phase>-<run id>.<ext> or -tensorboard/, -wandb/ here; "
                   "for mlflow the live sink's store, <runs root>/mlflow.db or $MLFLOW_TRACKING_URI)")
    p.add_argument("--deliverables", action="store_true",
                   help="export the deliverable verdicts instead (csv or jsonl, one row each: value, target, strongest "
                   "no-model baseline and its metric, margin, ablations, passed, why not); default name "
                   "<phase>-<run id>-deliverables.<ext>")
    add_runs_dir(p)
    p.set_defaults(_run=run)


def run(args) -> int:
    from voltx.runs.export import export_deliverables, export_run
    from voltx.runs.layout import resolve_run

    run_dir = resolve_run(args.run, root_from(args))
    done = (export_deliverables if args.deliverables else export_run)(run_dir, args.to, args.output)
    what = "deliverables of " if args.deliverables else ""
    print(f"voltx: exported {what}{run_dir.parent.name}/{run_dir.name} to {done.path}")
    if done.skipped.count:  # lines that are not step records were left out, never exported as rows
        print(f"voltx: {done.skipped.summary()}")
    return 0
