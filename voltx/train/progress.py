"""Progress output: a rich bar on a terminal, one plain line per update otherwise.

Every line also goes to the run's stdout.log, so `voltx logs` and the console show what
the terminal showed. Lines go to stderr (the seed's trainers printed progress there).
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO


class Reporter:
    def __init__(self, stream: TextIO | None = None, mode: str = "auto", copy: Callable[[str], None] | None = None):
        self.stream = stream or sys.stderr
        self.rich = mode == "rich" or (mode == "auto" and self.stream.isatty())
        self._copy = copy
        self._progress = None
        self._task = None
        if self.rich:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._console = Console(file=self.stream)
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
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
        self._task = self._progress.add_task(description, total=total, completed=completed, status="")

    def update(self, completed: int, status: str = "") -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, status=status)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._task = None
