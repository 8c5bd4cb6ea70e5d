"""``voltx attach RUN``: the console's run-detail view of one run, read-only.

For a quick look from another ssh session: curves, deliverables, RAR, alerts, config,
checkpoints and the log tail, live. It never stops, resumes or launches anything
(those keys are not bound); escape or q quits. Textual is imported only when it runs.
"""

from __future__ import annotations

from voltx.cli.common import add_runs_dir, root_from


def add_parser(sub) -> None:
    p = sub.add_parser("attach", help="open the console's read-only detail view of one run",
                       description="Open the console's run-detail view of one run, read-only; escape or q quits.")
    p.add_argument("run", metavar="RUN", help="run directory, id prefix, or latest")
    add_runs_dir(p)
    p.set_defaults(_run=run)


def build_app(args):
    """The app ``voltx attach`` runs (tests drive it with Pilot). Raises VoltxError for an unknown run."""
    from voltx.runs.layout import resolve_run

    root = root_from(args)
    run_dir = resolve_run(args.run, root)
    from voltx.console.app import VoltxConsole

    return VoltxConsole([root], run=run_dir, read_only=True)


def run(args) -> int:
    build_app(args).run()
    return 0
