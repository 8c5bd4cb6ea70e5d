"""``voltx plugins [--json]``: what is loaded, from where, and what failed."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("plugins", help="list loaded plugins (name, distribution, version, hooks, status) and failures",
                       description="List the loaded plugins (built-in and installed): distribution, version, hooks, "
                       "what each provides (phases, converters, strands, sinks, commands) and any that failed to load.")
    p.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")
    p.set_defaults(_run=run)


def run(args) -> int:
    from voltx.plugins import load_plugins

    ps = load_plugins()
    plugins = [info.as_dict() for info in sorted(ps.plugins.values(), key=lambda i: (not i.builtin, i.name))]
    failures = [f.as_dict() for f in ps.failures]
    if args.json:
        print(json.dumps({"plugins": plugins, "failures": failures}, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="voltx plugins")
    for col in ("name", "distribution", "version", "built-in", "hooks", "provides", "status"):
        table.add_column(col)
    for p in plugins:
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["provides"].items()) or "-"
        table.add_row(p["name"], p["distribution"], p["version"], "yes" if p["builtin"] else "no", ", ".join(p["hooks"]) or "-", provides, p["status"])
    console = Console()
    console.print(table)
    for f in failures:
        console.print(f"[red]failed[/red] {f['plugin']} ({f['distribution']}) at {f['stage']}: {f['error']}", highlight=False)
    return 0
