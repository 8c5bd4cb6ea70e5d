"""RAR convergence: iterations per query, per-slot converged share and certainty (γ).

Reads the latest ``kind="rar"`` event (docs/console.md) and draws bars with block
characters: 16 slots and a dozen iteration counts fit in 80 columns without a plot.
"""

from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual.widgets import Static

from voltx.console.data import _num

BLOCKS = " ▏▎▍▌▋▊▉█"


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
    text.append(f"step {event.get('step', '-')}", style="bold")
    if iterations_mean is not None:
        text.append(f"   mean iterations (latest step): {iterations_mean:.2f}")
    iterations = [int(i) for i in event.get("iterations", []) if _num(i) is not None]
    if iterations:
        counts = Counter(iterations)
        top = max(counts.values())
        text.append(f"\n\nIterations per query ({len(iterations)} queries)\n", style="bold")
        for n in range(min(counts), max(counts) + 1):
            text.append(f"{n:>4} {bar(counts.get(n, 0) / top, width)} {counts.get(n, 0)}\n")
    for title, key in (("Converged share per slot", "slot_converged"), ("Certainty γ per slot", "gamma")):
        values = [_num(v) for v in event.get(key, [])]
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
