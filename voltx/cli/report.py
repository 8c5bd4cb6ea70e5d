"""``voltx report RUN [--json]``: final metrics and the phase's deliverables with pass/fail, each
beside its strongest no-model baseline, margin and ablations, and why it failed."""

from __future__ import annotations

import json

from voltx.cli.common import add_runs_dir, root_from
from voltx.formatting import fmt_duration, verdict_columns


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a run's final metrics and deliverables (pass/fail)",
                       description="Show a run's final metrics, deliverable verdicts (pass/fail) and alerts.")
    p.add_argument("run", metavar="RUN", help="run directory, id prefix, or latest")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_runs_dir(p)
    p.set_defaults(_run=run)


def build_report(run_dir) -> dict:
    """What `voltx report` shows, from the run store's records (malformed lines skipped and counted)."""
    from voltx.runs.records import Alert, Deliverable, Evaluation
    from voltx.runs.store import RunReader

    reader = RunReader(run_dir)
    reader.refresh()
    m = reader.manifest.record  # checked: a damaged run.json leaves every field unset (the problem says why)
    evaluations: dict[str, float | None] = {}
    for e in reader.events_of(Evaluation):
        evaluations.update(e.metrics)
    metrics = reader.metrics
    last = metrics[-1] if metrics else None
    started, ended = m.started_at, m.ended_at
    return {
        "run": str(run_dir),
        "phase": m.phase or run_dir.parent.name,
        "status": reader.status,
        "problem": reader.manifest.problem,
        "exit_code": m.exit_code,
        "message": m.message,
        "preset": m.preset,
        "steps": last.step if last else None,
        "total_steps": m.total_steps,
        "duration_s": ended - started if ended is not None and started is not None else None,
        "final_losses": last.losses if last else {},
        "evaluations": evaluations,
        "deliverables": [d.verdict() for d in reader.events_of(Deliverable)],
        "alerts": [{"rule": a.rule, "step": a.step, "message": a.message} for a in reader.events_of(Alert)],
        "skipped": {s.file: s.as_dict() for s in (reader.skipped("metrics"), reader.skipped("events"))},
        "skipped_summary": [line for line in (reader.skipped("metrics").summary(), reader.skipped("events").summary()) if line],
    }


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _num(value, spec: str = ".4f") -> str:
    """A number for display; NaN/inf are logged as null, so a value may be None."""
    if _number(value) is None:
        return "n/a"
    return format(value, spec)


def _not_judged(report: dict) -> str:
    """Why a run has no verdicts, and what to do about it."""
    status, run_dir, phase = report["status"], report["run"], report["phase"]
    if status == "running":
        return "not judged yet (the run is still running; they are judged when it finishes)"
    if status == "finished":
        from voltx.plugins import load_plugins

        spec = load_plugins().specs("phases").get(phase)
        if spec is not None and not spec.deliverables:
            started = "; each run it started has its own report" if spec.starts_runs else ""
            return f"none (phase {phase} declares no deliverables{started})"
        return "none recorded: the run finished without judging them"
    from voltx.runs.resumable import RESUMABLE

    then = f"; `voltx logs {run_dir}` says why, `voltx run {phase} --resume {run_dir}` continues it" if status in RESUMABLE else ""
    return f"not judged (the run is {status}, its final evaluation never ran{then})"


DELIVERABLES = "deliverables (a verdict passes past its target and past the strongest no-model baseline by the margin)"
PROSE = ("why not", "source")
"""The deliverables table's sentences: they wrap between words, so a narrow column still reads."""
PROSE_MIN = 24
"""Narrowest a sentence column may get in the table; narrower, every deliverable is listed instead."""


def _deliverable_cells(d: dict) -> dict[str, str]:
    """One verdict's columns as rich markup (a value from the run store escaped: brackets are not markup)."""
    from rich.markup import escape

    c = verdict_columns(d)
    return {
        "metric": escape(str(d["metric"])), "value": _num(d["value"]),
        "target": f"{escape(str(d['op'] or '?'))} {_num(d['threshold'], 'g')}",
        "baseline (strongest)": escape(c["baseline"]), "margin": c["margin"], "ablation": escape(c["ablation"]),
        "result": "[green]PASS[/green]" if d["passed"] is True else "[red]FAIL[/red]",
        "why not": escape(c["reason"]) if d["passed"] is not True else "", "source": escape(str(d["description"] or "")),
    }


def _deliverables_table(rows: list[dict[str, str]], prose_width: int | None = None):
    from rich.table import Table

    t = Table(title=DELIVERABLES)
    for col in rows[0]:
        # metric names and baselines wrap whole, never cut to "…"; sentences wrap between words
        t.add_column(col, overflow="fold", max_width=prose_width if col in PROSE else None)
    for row in rows:
        t.add_row(*row.values())
    return t


def _print_deliverables(console, deliverables: list[dict]) -> None:
    """The verdicts as a table where it fits the terminal with every column but the sentences at its
    full width, else (80 columns, a pipe) one block per deliverable: a table squeezed into 80
    columns broke metric names and numbers into fragments a letter or two wide."""
    from rich.measure import Measurement
    from rich.text import Text

    rows = [_deliverable_cells(d) for d in deliverables]
    unbounded = console.options.update_width(1 << 20)
    if Measurement.get(console, unbounded, _deliverables_table(rows, PROSE_MIN)).maximum <= console.width:
        console.print(_deliverables_table(rows))
        return
    console.print(DELIVERABLES, highlight=False, markup=False)
    fields = [key for key in rows[0] if key not in ("metric", "value", "target", "result")]
    indent = 2 + max(map(len, fields)) + 2
    for row in rows:
        console.print(f"{row['result']} [bold]{row['metric']}[/bold] = {row['value']}  (target {row['target']})", highlight=False)
        for key in fields:
            if not row[key]:
                continue
            # a hanging indent: a long name or sentence continues under its value, never under the labels
            lines = Text.from_markup(row[key]).wrap(console, max(20, console.width - indent), overflow="fold")
            for n, line in enumerate(lines):
                label = f"  {key}:".ljust(indent) if n == 0 else " " * indent
                line.rstrip()
                console.print(Text(label, style="dim") + line, highlight=False, soft_wrap=True)


def run(args) -> int:
    from voltx.runs.layout import resolve_run

    report = build_report(resolve_run(args.run, root_from(args)))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def text(value) -> str:
        """A value from the run store as literal text: brackets in it are not markup."""
        return escape(str(value))

    console = Console()
    steps = "-" if report["steps"] is None else report["steps"]
    if report["steps"] is not None and report["total_steps"]:
        steps = f"{steps}/{report['total_steps']}"
    status = report["status"] if report["exit_code"] is None else f"{report['status']} (exit {report['exit_code']})"
    if report["problem"]:
        status += f" ({report['problem']})"
    console.print(
        f"[bold]{text(report['phase'])}[/bold] run {text(report['run'])}\nstatus: {text(status)}"
        f"  steps: {steps}  duration: {fmt_duration(report['duration_s'])}  preset: {text(report['preset'] or '-')}",
        highlight=False,
    )
    if report["message"]:
        console.print(f"message: {report['message']}", highlight=False, markup=False)
    if report["final_losses"]:
        losses = ", ".join(f"{k} {_num(v)}" for k, v in report["final_losses"].items())
        console.print(f"{'latest' if report['status'] == 'running' else 'final'} losses: {losses}", highlight=False, markup=False)
    if report["evaluations"]:
        t = Table(title="evaluations (latest)")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in sorted(report["evaluations"].items()):
            t.add_row(text(k), _num(v))
        console.print(t)
    if report["deliverables"]:
        _print_deliverables(console, report["deliverables"])
    else:
        console.print(f"deliverables: {_not_judged(report)}", highlight=False, markup=False, soft_wrap=True)  # a command to copy: never broken
    for a in report["alerts"]:
        step = "-" if a["step"] is None else a["step"]
        console.print(f"[yellow]alert[/yellow] {text(a['rule'])} at step {step}: {text(a['message'])}", highlight=False)
    for line in report["skipped_summary"]:
        console.print(f"[yellow]{text(line)}[/yellow]", highlight=False)
    return 0
