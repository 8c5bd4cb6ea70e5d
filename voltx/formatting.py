"""How numbers, times and durations read on a terminal: one formatter each, shared by the
commands (``voltx status``, ``voltx report``), the training progress lines and the console.

Import-light (standard library only): ``voltx --help`` and the console both import it.
"""

from __future__ import annotations

import time
from typing import Any


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


NOT_RECORDED = "—"
"""What a verdict column shows where the run recorded nothing (runs from before baselines)."""


def verdict_columns(v) -> dict[str, str]:
    """A deliverable verdict's context as text, shared by ``voltx report``, ``voltx export`` and the
    console: ``baseline`` (the strongest no-model method, ``name = value``), ``margin``, ``ablation``
    (``name = value``, ``; ``-joined) and ``reason`` (why it failed). ``v`` is the verdict as a
    mapping (:meth:`voltx.plugin_specs.Deliverable.judge`'s fields); a field it lacks shows as
    :data:`NOT_RECORDED`, a value that was not measured as ``n/a``."""
    def num(x) -> str:
        return "n/a" if x is None else fmt_num(x)

    name = v.get("baseline_metric") or next(iter(v.get("baselines") or {}), None)
    ablations = v.get("ablations") or {}
    return {
        "baseline": f"{name} = {num(v.get('baseline'))}" if name else NOT_RECORDED,
        "margin": NOT_RECORDED if v.get("margin") is None else fmt_num(v["margin"]),
        "ablation": "; ".join(f"{k} = {num(x)}" for k, x in ablations.items()) or NOT_RECORDED,
        "reason": v.get("reason") or NOT_RECORDED,
    }


def flatten(table: dict[str, Any], sep: str = "/", prefix: str = "") -> dict[str, Any]:
    """Nested tables as one level: ``{"losses": {"loss": 1.0}}`` -> ``{"losses/loss": 1.0}``
    (TensorBoard's tag style; ``sep="."`` gives a config's dotted keys). The one flattener of
    export, the console's compare view and the tracker sinks."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, sep, f"{name}{sep}"))
        else:
            out[name] = value
    return out
