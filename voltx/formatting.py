"""How numbers, times and durations read on a terminal: one formatter each, shared by the
commands (``voltx status``, ``voltx report``), the training progress lines and the console.

Import-light (standard library only): ``voltx --help`` and the console both import it.
"""

from __future__ import annotations

import time


def fmt_duration(seconds: float | None) -> str:
    """``1h05m`` from an hour up, ``4m07s`` below; ``-`` when not known."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def fmt_time(t: float | None) -> str:
    """A wall-clock time (``time.time()``) as local ``MM-DD HH:MM``; ``-`` when not known."""
    if t is None:
        return "-"
    return time.strftime("%m-%d %H:%M", time.localtime(t))


def fmt_num(v: float | None, digits: int = 4) -> str:
    """A metric value: ``digits`` significant digits, scientific when very large or small."""
    if v is None:
        return "-"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.2e}"
    return f"{v:.{digits}g}"
