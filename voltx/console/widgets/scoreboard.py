"""The deliverables scoreboard: value, target, pass/fail and trend per metric."""

from __future__ import annotations

from textual.widgets import DataTable

from voltx.formatting import fmt_num
from voltx.console.run_data import Verdict


def verdict_text(v: Verdict) -> str:
    """PASS / FAIL for a judged deliverable; ``pending`` for a declared one not judged yet;
    ``-`` for a metric that is only evaluated (it has no target, so it never gets a verdict)."""
    if v.passed is None:
        return "[dim]pending[/]" if v.op is not None else "-"
    if v.passed:
        return "[bold green]PASS[/]"
    return "[bold red]FAIL[/]" if v.value is not None else "[bold red]FAIL (not evaluated)[/]"


class Scoreboard(DataTable):
    """One row per deliverable (declared ones first), then metrics only evaluated so far."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("metric", "value", "target", "verdict", "trend", "evaluations")

    def show(self, verdicts: list[Verdict]) -> None:
        self.clear()
        for v in verdicts:
            value = v.value if v.value is not None else (v.history[-1] if v.history else None)
            target = f"{v.op} {fmt_num(v.threshold)}" if v.op and v.threshold is not None else "-"
            verdict = verdict_text(v)
            history = " ".join(fmt_num(h, 3) for h in v.history[-4:])
            self.add_row(v.metric, fmt_num(value), target, verdict, v.trend, history or "-", key=v.metric)
