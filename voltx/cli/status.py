"""``voltx status [--json]``: every run under the runs root, with live state."""

from __future__ import annotations

import json
import sys
import time

from voltx.cli.common import add_runs_dir, root_from
from voltx.formatting import fmt_duration


def add_parser(sub) -> None:
    p = sub.add_parser("status", help="list runs: phase, status, step, losses, throughput, ETA",
                       description="List the runs of the run store: phase, status, step, losses, throughput and ETA.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--phase", help="only runs of this phase (default: every phase)")
    add_runs_dir(p)
    p.set_defaults(_run=run)


def run(args) -> int:
    from voltx.runs.layout import list_run_dirs
    from voltx.runs.mirror import mirror_lag
    from voltx.runs.store import summarize

    root = root_from(args)
    runs = [summarize(d) for d in list_run_dirs(root) if not args.phase or d.parent.name == args.phase]
    mirrors = [mirror_lag(r.dir) for r in runs]  # None: the run has no mirror
    if args.json:
        print(json.dumps({"root": str(root), "runs": [{**r.as_dict(), "mirror": m} for r, m in zip(runs, mirrors)]}, indent=1))
        return 0
    if not runs:
        print(f"no runs under {root}. Start one with `voltx run translator --preset quick`.")
        return 0
    columns = ("run", "phase", "status", "step", "losses", "samples/s", "ETA", "host", "started")
    rows = []
    for r, mirror in zip(runs, mirrors):
        step = "-" if r.step is None else f"{r.step}" + (f"/{r.total_steps}" if r.total_steps else "")
        losses = " ".join(f"{k}={v:.3f}" for k, v in list(r.losses.items())[:3]) or "-"
        started = "-" if r.started_at is None else time.strftime("%m-%d %H:%M", time.localtime(r.started_at))
        sps = f"{r.samples_per_sec:.1f}" if r.samples_per_sec else "-"
        status = f"{r.status} ({'; '.join(r.problems)})" if r.problems else r.status  # damaged: which field, what was expected
        status += f"; {mirror}" if mirror else ""
        rows.append([r.id, r.phase, status, step, losses, sps, fmt_duration(r.eta_s), r.host or "-", started])
    if not sys.stdout.isatty():
        # A pipe or a log: plain aligned lines, one per run, nothing truncated (ids are
        # what `voltx logs RUN` takes), no box drawing and no ANSI.
        widths = [max(len(x) for x in col) for col in zip(columns, *rows)]
        for line in (columns, *rows):
            print("  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip())
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"runs in {root}")
    for i, col in enumerate(columns):  # the run id is never cut: `voltx logs RUN` needs it
        table.add_column(col, no_wrap=i == 0, min_width=max(len(r[0]) for r in rows) if i == 0 else None)
    colours = {"running": "green", "finished": "blue", "failed": "red", "diverged": "red", "preempted": "yellow", "stale": "magenta",
               "damaged": "red"}
    for r, row in zip(runs, rows):
        colour = colours.get(r.status, "white")
        row = [escape(x) for x in row]
        row[2] = f"[{colour}]{row[2]}[/{colour}]"
        table.add_row(*row)
    Console().print(table)
    return 0
