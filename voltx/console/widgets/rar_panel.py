"""RAR convergence: iterations per query, per-slot converged share and certainty (γ).

Reads the latest ``kind="rar"`` event (docs/console.md) and draws bars with block
characters: 16 slots and a dozen iteration counts fit in 80 columns without a plot.
"""

from __future__ import annotations

import math
from collections import Counter

from rich.text import Text
from textual.widgets import Static

from voltx.console.data import _num

BLOCKS = " ▏▎▍▌▋▊▉█"
MAX_ROWS = 64
"""Iteration counts or slots drawn at most (a corrupt event must not draw a billion rows)."""


def _numbers(value) -> list[float | None]:
    """A list field of a rar event as numbers (None for a non-number); not a list: empty."""
    if not isinstance(value, list):
        return []
    return [v if v is not None and math.isfinite(v) else None for v in map(_num, value[:100_000])]


def bar(fraction: float, width: int) -> str:
    fraction = min(1.0, max(0.0, fraction))
    full, rest = divmod(round(fraction * width * 8), 8)
    return ("█" * full + (BLOCKS[rest] if rest else "")).ljust(width)


def render_rar(event: dict | None, iterations_mean: float | None, width: int = 40) -> Text:
    if event is None:
        text = Text("No RAR telemetry in this run.\n", style="dim")
        text.append("Phases that run the RAR loop log kind=\"rar\" events (see docs/console.md).", style="dim")
        if iterations_mean is not None:
            text.append(f"\n\nlatest rar/iterations_mean: {iterations_mean:.3f}")
        return text
    text = Text()
    text.append(f"step {event.get('step', '-')}", style="bold")  # Text.append: no markup
    if iterations_mean is not None:
        text.append(f"   mean iterations (latest step): {iterations_mean:.2f}")
    iterations = [int(i) for i in _numbers(event.get("iterations")) if i is not None]
    if iterations:
        counts = Counter(iterations)
        top = max(counts.values())
        text.append(f"\n\nIterations per query ({len(iterations)} queries)\n", style="bold")
        low = min(counts)
        for n in range(low, min(max(counts), low + MAX_ROWS - 1) + 1):
            text.append(f"{n:>4} {bar(counts.get(n, 0) / top, width)} {counts.get(n, 0)}\n")
    frames = _numbers([event.get("frame_converged")])[0]
    if frames is not None:  # F3's events: the share of queries whose every slot froze
        text.append(f"\nConverged queries (every slot frozen): {frames:.1%}\n", style="bold")
        right = _numbers([event.get("converged_correct")])[0]
        if right is not None:  # a field that stops at once converges too: convergence beside the answers
            text.append(f"Converged and answered right: {right:.1%}\n")
    for title, key in (("Converged share per slot", "slot_converged"), ("Certainty γ per slot", "gamma")):
        values = _numbers(event.get(key))[:MAX_ROWS]
        if not values:
            continue
        text.append(f"\n{title}\n", style="bold")
        for slot, v in enumerate(values):
            shown = "-" if v is None else f"{v:.2f}"
            text.append(f" S{slot:<3}{bar(v or 0.0, width)} {shown}\n")
    return text


class RarPanel(Static):
    def show(self, event: dict | None, iterations_mean: float | None) -> None:
        width = max(10, min(50, self.size.width - 14)) if self.size.width else 40
        self.update(render_rar(event, iterations_mean, width))
