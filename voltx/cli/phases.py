"""``voltx phases [--json]``: the phases that can run, with their deliverables."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("phases", help="list installed phases and their deliverables",
                       description="List the phases `voltx run` can run (built-in and from plugins): summary, "
                       "where each comes from, its deliverables (metric and target) and artifacts.")
    p.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")
    p.set_defaults(_run=run)


def run(args) -> int:
    from voltx.plugins import load_plugins

    plugins = load_plugins()
    rows = []
    for name, spec in plugins.specs("phases").items():
        owner = plugins.plugins[plugins.provider("phases", name)]
        rows.append(
            {
                "name": name,
                "summary": spec.summary,
                "plugin": owner.name,
                "distribution": owner.distribution,
                "version": owner.version,
                "builtin": owner.builtin,
                "status": owner.status,
                "deliverables": [{"metric": d.metric, "op": d.op, "threshold": d.threshold} for d in spec.deliverables],
                "artifacts": list(spec.artifacts),
            }
        )
    if args.json:
        print(json.dumps({"phases": rows}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="voltx phases", show_lines=False)
    for col in ("phase", "summary", "from", "deliverables"):
        table.add_column(col)
    for r in rows:
        source = "built-in" if r["builtin"] else f"{r['distribution']} {r['version']}"
        dl = "\n".join(f"{d['metric']} {d['op']} {d['threshold']:g}" for d in r["deliverables"]) or "-"
        table.add_row(r["name"], r["summary"], source, dl)
    Console().print(table)
    return 0
