"""Progress output: a rich bar on a terminal, one plain line per update otherwise.

Every line also goes to the run's stdout.log, so `voltx logs` and the console show what
the terminal showed. Lines go to stderr (the seed's trainers printed progress there).

Progress and ETA are over the whole run: a phase with several trained stages (translator:
encoder then decoder) declares their step counts up front (``RunContext.plan_steps``), so
the bar, ``total_steps`` (what ``voltx status`` and the console compute the ETA from) and
the epoch-end progress line count every stage, not only the current one.
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO


def run_total(plan: dict[str, int], stage: str, base: int, stage_total: int) -> int:
    """Steps of the whole run: those before this stage (``base``), this stage's, and the
    planned steps of the stages after it (``plan`` is in run order)."""
    names = list(plan)
    later = names[names.index(stage) + 1 :] if stage in plan else []
    return base + stage_total + sum(plan[name] for name in later)


def stage_label(plan: dict[str, int], stage: str) -> str:
    """``decoder (stage 2/2)`` when the run has several planned stages, else the stage name."""
    if stage in plan and len(plan) > 1:
        return f"{stage} (stage {list(plan).index(stage) + 1}/{len(plan)})"
    return stage


def progress_line(step: int, total: int, label: str, eta_s: float | None) -> str:
    """The whole run's position and ETA, e.g. ``[run] step 7/21 (33%) in encoder (stage 1/2),
    ETA 12s for the whole run``; ``eta_s`` is :func:`voltx.runs.store.eta_seconds`' (the rule
    ``voltx status`` and the console show), so the terminal and the readers agree."""
    from voltx.formatting import fmt_duration

    share = f" ({step / total:.0%})" if total else ""
    line = f"[run] step {step}/{total}{share} in {label}"
    if eta_s is not None and total > step:
        line += f", ETA {fmt_duration(eta_s)} for the whole run"
    return line


def eta_column():
    """The bar's time-remaining column: the caller's ETA when it gives one (the shared loop gives the
    rule ``voltx status`` and the console show, so the bar agrees with them), else rich's estimate."""
    from rich.progress import TimeRemainingColumn
    from rich.text import Text

    from voltx.formatting import fmt_duration

    class EtaColumn(TimeRemainingColumn):
        def render(self, task):
            eta = task.fields.get("eta_s")
            return super().render(task) if eta is None else Text(fmt_duration(eta), style="progress.remaining")

    return EtaColumn()


class Reporter:
    def __init__(self, stream: TextIO | None = None, mode: str = "auto", copy: Callable[[str], None] | None = None):
        self.stream = stream or sys.stderr
        self.rich = mode == "rich" or (mode == "auto" and self.stream.isatty())
        self._copy = copy
        self._progress = None
        self._task = None
        if self.rich:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._console = Console(file=self.stream)
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                eta_column(),
                TextColumn("{task.fields[status]}"),
                console=self._console,
                transient=True,
            )

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
        if self._copy:
            self._copy(text)

    def start(self, description: str, total: int, completed: int = 0) -> None:
        if self._progress is None:
            return
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed, status="", eta_s=None)

    def update(self, completed: int, status: str = "", eta_s: float | None = None) -> None:
        """Move the bar; ``eta_s`` (the shared loop's: :func:`voltx.runs.store.eta_seconds`) is the ETA it
        shows, else rich's own estimate (a phase with a loop of its own)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, status=status, eta_s=eta_s)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._task = None
