"""Preemption signals: the first SIGTERM/SIGUSR1/SIGINT/SIGHUP asks for a checkpoint and a
clean exit at the next step boundary; a second one exits at once (EXIT_INTERRUPTED).

SIGHUP is what a run gets when its terminal goes away (ssh drops, the tmux session is
closed): it is a stop request like SIGTERM, and the run stops writing to the dead terminal
(its stdout.log keeps every line: see TerminalOutput); a repeated SIGHUP is the same hangup reported twice
(kernel and shell or tmux), not a second request. Once the run's outcome is decided (``settle``) the
handler stays installed until the process exits, so a late signal can no longer turn the
exit code that run.json records (75) into another one (143, 130).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from typing import Callable, TextIO

from voltx.errors import EXIT_INTERRUPTED

HANDLED = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGHUP)


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # the terminal is gone (EIO) or stderr closed
        pass


def _flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _leave_dead_terminal() -> None:
    """Point stdin/stdout/stderr that are terminals at /dev/null: after a hangup, writing to
    the terminal fails (EIO) and would turn the preemption checkpoint into a crash."""
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            try:
                if os.isatty(fd):
                    os.dup2(devnull, fd)
            except OSError:
                continue
    finally:
        os.close(devnull)


class TerminalOutput:
    """A standard stream that outlives its terminal, for the progress display.

    When the terminal goes away its pty reports EIO to every write, often before the SIGHUP
    handler has run; a closed pipe reports EPIPE. Either would turn the stop into a crash
    (exit 1, no checkpoint), so such writes are dropped and the standard streams pointed at
    /dev/null; the run's stdout.log keeps every line."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def _guard(self, method: str, *args):
        try:
            return getattr(self._stream, method)(*args)
        except OSError as exc:
            if exc.errno not in (errno.EIO, errno.EPIPE):
                raise
            _leave_dead_terminal()
            return len(args[0]) if args else None

    def write(self, text: str) -> int:
        return self._guard("write", text)

    def flush(self) -> None:
        self._guard("flush")

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class StopFlag:
    def __init__(self, on_second: Callable[[], None] | None = None):
        self.requested = False
        self.signal_name: str | None = None
        self._on_second = on_second
        self._previous: dict[int, object] = {}
        self._settled = False
        self._exit_code: int | None = None
        self._first, self._at = 0, 0.0

    def install(self) -> "StopFlag":
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def settle(self, exit_code: int | None = None) -> None:
        """The run's outcome is decided: signals no longer change it. Until its end is
        recorded (``exit_code`` None) they are ignored; after that a signal exits at once
        with the recorded ``exit_code``."""
        self._settled = True
        if exit_code is not None:
            self._exit_code = exit_code

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            _leave_dead_terminal()
        if self._exit_code is not None:
            _say(f"voltx: {name} received as the run exits: exiting now with {self._exit_code}, as run.json records")
            _flush_and_exit(self._exit_code)
        if self._settled:
            _say(f"voltx: {name} received while the run records its end: it exits as soon as that is written")
            return
        if self.requested and signum == signal.SIGHUP:
            return  # one hangup arrives more than once (the kernel and the shell or tmux each send it)
        if self.requested and signum == self._first and "LOCAL_RANK" in os.environ and time.monotonic() - self._at < 2.0:
            return  # a process of a distributed run: the launcher passes on the Ctrl-C the terminal sent it too
        if self.requested:
            _say(f"voltx: second signal ({name}): stopping now without a checkpoint")
            try:
                if self._on_second:
                    self._on_second()
            finally:
                _flush_and_exit(EXIT_INTERRUPTED)
        self.requested = True
        self.signal_name = name
        self._first, self._at = signum, time.monotonic()
        _say(
            f"voltx: {name} received: checkpointing at the next step boundary, then exiting "
            "(send it again to stop at once)"
        )
