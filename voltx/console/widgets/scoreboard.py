"""The deliverables scoreboard: value, target, the strongest no-model baseline, margin, ablations,
pass/fail, trend and, for a failed verdict, why."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from voltx.formatting import fmt_num, verdict_columns
from voltx.console.run_data import Verdict


def verdict_text(v: Verdict) -> str:
    """PASS / FAIL for a judged deliverable; ``pending`` for a declared one not judged yet;
    ``-`` for a metric that is only evaluated (it has no target, so it never gets a verdict)."""
    if v.passed is None:
        return "[dim]pending[/]" if v.op is not None else "-"
    if v.passed:
        return "[bold green]PASS[/]"
    return "[bold red]FAIL[/]" if v.value is not None else "[bold red]FAIL (not evaluated)[/]"


COLUMNS = ("metric", "value", "target", "baseline", "margin", "ablation", "verdict", "trend", "evaluations", "why not")


class Scoreboard(DataTable):
    """One row per deliverable (declared ones first), then metrics only evaluated so far."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*COLUMNS)

    def show(self, verdicts: list[Verdict]) -> None:
        self.clear()
        for v in verdicts:
            value = v.value if v.value is not None else (v.history[-1] if v.history else None)
            target = f"{v.op} {fmt_num(v.threshold)}" if v.op and v.threshold is not None else "-"
            verdict = verdict_text(v)
            history = " ".join(fmt_num(h, 3) for h in v.history[-4:])
            if v.passed is None:  # not judged (yet): nothing was compared
                context = ["-"] * 4
            else:
                c = verdict_columns(vars(v))
                context = [Text(c["baseline"]), c["margin"], Text(c["ablation"]), Text("" if v.passed else c["reason"])]
            base, margin, ablation, why = context
            self.add_row(v.metric, fmt_num(value), target, base, margin, ablation, verdict, v.trend, history or "-", why,
                         key=f"{v.metric} {v.op} {v.threshold}")  # one metric may have several deliverables
