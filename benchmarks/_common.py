"""Small helpers shared by the benchmark scripts (not part of the voltx package)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from typing import Any


def machine() -> dict[str, Any]:
    """What the figures were measured on (goes into every JSON line)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every OS
        load = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "load_1min": None if load is None else round(load, 2),
    }


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit_json(name: str, figures: dict[str, Any]) -> None:
    """One machine-readable line per run, prefixed so it can be grepped out of the output."""
    print("BENCH_JSON " + json.dumps({"bench": name, **figures, "machine": machine()}, sort_keys=False))
