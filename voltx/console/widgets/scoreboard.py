"""The deliverables scoreboard: value, target, pass/fail and trend per metric."""

from __future__ import annotations

from textual.widgets import DataTable

from voltx.console.data import fmt_num
from voltx.console.run_data import Verdict


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
            if v.passed is None:
                verdict = "[dim]pending[/]" if v.op is None else "-"
            elif v.passed:
                verdict = "[bold green]PASS[/]"
            else:
                verdict = "[bold red]FAIL[/]" if v.value is not None else "[bold red]FAIL (not evaluated)[/]"
            history = " ".join(fmt_num(h, 3) for h in v.history[-4:])
            self.add_row(v.metric, fmt_num(value), target, verdict, v.trend, history or "-", key=v.metric)
