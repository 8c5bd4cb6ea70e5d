"""``voltx report RUN [--json]``: final metrics and the phase's deliverables with pass/fail."""

from __future__ import annotations

import json

from voltx.cli.common import add_runs_dir, fmt_duration, root_from


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="a run's final metrics and deliverables (pass/fail)",
                       description="Show a run's final metrics, deliverable verdicts (pass/fail) and alerts.")
    p.add_argument("run", metavar="RUN", help="run directory, id prefix, or latest")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_runs_dir(p)
    p.set_defaults(_run=run)


def build_report(run_dir) -> dict:
    from voltx.runs.store import RunReader

    reader = RunReader(run_dir)
    reader.refresh()
    m = reader.manifest
    evaluations: dict[str, float] = {}
    for e in reader.events_of("evaluation"):
        evaluations.update(e.get("metrics", {}))
    metrics = reader.metrics
    last = metrics[-1] if metrics else {}
    deliverables = reader.events_of("deliverable")
    alerts = reader.events_of("alert")
    duration = (m.get("ended_at") or 0) - (m.get("started_at") or 0) if m.get("ended_at") else None
    return {
        "run": str(run_dir),
        "phase": m.get("phase"),
        "status": reader.status,
        "exit_code": m.get("exit_code"),
        "message": m.get("message"),
        "preset": m.get("preset"),
        "steps": last.get("step"),
        "duration_s": duration,
        "final_losses": last.get("losses", {}),
        "evaluations": evaluations,
        "deliverables": [
            {k: d.get(k) for k in ("metric", "op", "threshold", "value", "passed", "description")} for d in deliverables
        ],
        "alerts": [{k: a.get(k) for k in ("rule", "step", "message")} for a in alerts],
        "corrupt_lines": reader.corrupt,
    }


def _num(value, spec: str = ".4f") -> str:
    """A number for display; NaN/inf are logged as null, so a value may be None (or odd)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    return format(value, spec)


def run(args) -> int:
    from voltx.runs.layout import resolve_run

    report = build_report(resolve_run(args.run, root_from(args)))
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{report['phase']}[/bold] run {report['run']}\nstatus: {report['status']} (exit {report['exit_code']})"
        f"  steps: {report['steps']}  duration: {fmt_duration(report['duration_s'])}  preset: {report['preset'] or '-'}",
        highlight=False,
    )
    if report["message"]:
        console.print(f"message: {report['message']}", highlight=False, markup=False)
    if report["final_losses"]:
        console.print("final losses: " + ", ".join(f"{k} {_num(v)}" for k, v in report["final_losses"].items()), highlight=False)
    if report["evaluations"]:
        t = Table(title="evaluations (latest)")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in sorted(report["evaluations"].items()):
            t.add_row(k, _num(v))
        console.print(t)
    t = Table(title="deliverables")
    for col in ("metric", "value", "target", "result", "source"):
        t.add_column(col)
    for d in report["deliverables"]:
        result = "[green]PASS[/green]" if d["passed"] else "[red]FAIL[/red]"
        t.add_row(str(d["metric"]), _num(d["value"]), f"{d['op']} {_num(d['threshold'], 'g')}", result, d.get("description") or "")
    if report["deliverables"]:
        console.print(t)
    else:
        console.print("deliverables: not judged yet (the run has not finished)")
    for a in report["alerts"]:
        console.print(f"[yellow]alert[/yellow] {a['rule']} at step {a['step']}: {a['message']}", highlight=False)
    return 0
