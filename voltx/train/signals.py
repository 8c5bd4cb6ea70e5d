"""Preemption signals: the first SIGTERM/SIGUSR1/SIGINT asks for a checkpoint and a clean
exit at the next step boundary; a second one exits at once (EXIT_INTERRUPTED)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable

from voltx.errors import EXIT_INTERRUPTED

HANDLED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class StopFlag:
    def __init__(self, on_second: Callable[[], None] | None = None):
        self.requested = False
        self.signal_name: str | None = None
        self._on_second = on_second
        self._previous: dict[int, object] = {}

    def install(self) -> "StopFlag":
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            print(f"voltx: second signal ({name}): stopping now without a checkpoint", file=sys.stderr, flush=True)
            if self._on_second:
                try:
                    self._on_second()
                finally:
                    os._exit(EXIT_INTERRUPTED)
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        self.signal_name = name
        print(
            f"voltx: {name} received: checkpointing at the next step boundary, then exiting "
            "(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
