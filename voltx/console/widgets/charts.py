"""Line charts of named series in braille dots, drawn with numpy.

Why not plotext (textual-plotext): profiled while tailing a live run at 160x48, one plotext
redraw cost ~116 ms (its pure-Python matrix build plus ANSI re-parsing by rich), so a tab
switch or a 2 Hz refresh blocked input for hundreds of ms and the console used about half a
core. Here the dots of every segment are computed in one vectorised pass and each row
becomes a few styled runs of text: a redraw costs a few milliseconds at any size
(``benchmarks/bench_console.py`` measures both).

The series handed to ``show`` are already downsampled (``voltx.console.series.downsample``:
a min and a max per column), so spikes stay visible. A run of several stages (``stages``: each
one's name and first step) is drawn apart: no line joins one stage's last point to the next
stage's first (their losses are of different models or objectives, so the join would read as a
jump), a dotted rule marks where each stage begins and a row above the plot names them (names
that would collide are staggered onto a second or third row). Overlaid runs (the Compare screen)
each bring their own stages (``per_series``): each curve is broken at its own run's stage starts,
and the rules and names mark every run's, a name in its run's colour.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.widget import Widget

from voltx.formatting import fmt_num

PALETTE = ("cyan", "magenta", "green", "yellow", "dodger_blue2", "red", "orange3", "bright_white")
# braille dot bits by (row 0-3, column 0-1) inside a 2x4 cell (Unicode U+2800 block)
_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
GUTTER = 9  # y tick labels
NAME_ROWS = 3  # rows naming a chart's stages, at most: names too close for one row are staggered onto them
RULE = -2  # the colour index of a stage rule's cells (-1: an empty cell)
Stages = tuple[tuple[str, float], ...]
"""(stage, first step) of each of a run's stages in step order (``voltx.console.series.SeriesView.stages``)."""


def _step_label(v: float, span: float) -> str:
    """Steps are counts: whole numbers with thousands separators unless the axis is narrow."""
    return f"{round(v):,}" if span >= 10 or float(v).is_integer() else fmt_num(v)


def _span(lo: float, hi: float) -> tuple[float, float]:
    if hi > lo:
        return lo, hi
    pad = abs(lo) * 0.05 or 1.0  # a flat line sits mid-chart, not on an edge
    return lo - pad, hi + pad


def _dots(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer dot coordinates of the polyline through (x, y): every segment rasterised with
    as many samples as its longer side has dots (a DDA line, vectorised over all segments)."""
    if len(x) == 1:
        return x.round().astype(np.int64), y.round().astype(np.int64)
    dx, dy = np.diff(x), np.diff(y)
    n = np.maximum(np.abs(dx), np.abs(dy)).round().astype(np.int64) + 1
    seg = np.repeat(np.arange(len(n)), n)
    start = np.cumsum(n) - n
    t = (np.arange(n.sum()) - start[seg]) / np.maximum(n[seg] - 1, 1)
    return (x[seg] + t * dx[seg]).round().astype(np.int64), (y[seg] + t * dy[seg]).round().astype(np.int64)


def _pieces(x: np.ndarray, starts: np.ndarray) -> list[slice]:
    """The runs of ``x`` (steps, ascending) that fall in one stage each: ``starts`` are the first
    steps of the stages after the first."""
    stage = np.searchsorted(starts, x, side="right")
    cuts = np.flatnonzero(np.diff(stage)) + 1
    return [slice(a, b) for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(x)])]


def _stage_rows(stages: Stages, columns: list[int], plot_w: int, most: int) -> tuple[list[list[str]], list[list[int]]]:
    """The rows naming the stages (at most ``most``; the last sits on the plot): each name from the
    column where its stage begins (after the first, on a ``┊`` that continues the rule below it), and
    for each cell the index of the stage it names (-1: none). A name that would run into the next
    one's rule is staggered: the next goes a row down, nearer the plot, and the rule of the one above
    runs down past it, so two runs that change stage a few steps apart (the Compare screen) are both
    named whole. Out of rows, a name is cut to the room before the next one's rule."""
    labels = [name if i == 0 else "┊" + name for i, (name, _) in enumerate(stages)]
    level = []
    for j, at in enumerate(columns):  # below every earlier name that reaches this column (or its gap)
        level.append(min(most - 1, max((level[i] + 1 for i in range(j) if columns[i] <= at <= columns[i] + len(labels[i])), default=0)))
    rows = max(level, default=0) + 1
    chars, owner = [[" "] * plot_w for _ in range(rows)], [[-1] * plot_w for _ in range(rows)]
    rule: set[tuple[int, int]] = set()
    for j, (at, label) in enumerate(zip(columns, labels)):
        r = level[j]
        row, own = chars[r], owner[r]
        for c in range(at, plot_w):  # out of rows: the name on this row that reaches here is cut...
            if own[c] == -1:
                break
            row[c], own[c] = " ", -1
        if at > 0 and own[at - 1] != -1 and (r, at - 1) not in rule:  # ...a space before this one
            row[at - 1], own[at - 1] = " ", -1
        text = label[: max(0, plot_w - at)]
        row[at : at + len(text)], own[at : at + len(text)] = text, [j] * len(text)
        for below in range(r + 1, rows) if j else ():  # the rule, down to the plot (the first stage has none)
            chars[below][at], owner[below][at] = "┊", j
            rule.add((below, at))
    return chars, owner


def _name_styles(stages: Stages, named: list, per_series: dict[str, Stages] | None) -> list[str]:
    """Each stage name's style: in an overlay, a stage start of one run only is in that run's colour
    (whose decoder begins where); one shared by several runs, the first stage, or a lone run's, dim."""
    styles = []
    for i, mark in enumerate(stages):
        runs = [k for k, (name, _, _) in enumerate(named) if per_series and mark in per_series.get(name, ())[1:]]
        styles.append(PALETTE[runs[0] % len(PALETTE)] if i and len(runs) == 1 and len(named) > 1 else "dim")
    return styles


def every_stage(per_series: dict[str, Stages]) -> Stages:
    """What the rules and the names row of an overlay mark: the earliest first stage, then every
    later stage start of any run, in step order, each once. () when no run changes stage: runs of
    one stage each (two phases' runs compared) are drawn as a run of one stage is."""
    later = sorted({mark for stages in per_series.values() for mark in stages[1:]}, key=lambda m: (m[1], m[0]))
    firsts = [stages[0] for stages in per_series.values() if stages]
    return (min(firsts, key=lambda m: m[1]), *later) if later else ()


def render_chart(series: dict[str, tuple[list[float], list[float]]], width: int, height: int, *,
                 title: str = "", note: str = "", stages: Stages = (), per_series: dict[str, Stages] | None = None) -> Text:
    """The whole chart (title + legend, rows naming the stages when there are several, plot rows
    with y ticks, x axis with step labels). ``per_series`` (series name -> its run's stages), when
    given, stands for ``stages``: see the module docstring."""
    if per_series:
        stages = every_stage(per_series)
    head = Text(title, style="bold")
    if note:
        head.append(f"  ({note})", style="dim")
    named = [(name, np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for name, (x, y) in series.items()]
    named = [(name, x, y) for name, x, y in named if len(x) and len(x) == len(y)]
    for i, (name, _, _) in enumerate(named):
        head.append("  ■ ", style=PALETTE[i % len(PALETTE)]).append(name)
    if named:
        xs = np.concatenate([x for _, x, _ in named])
        x_lo, x_hi = _span(float(xs.min()), float(xs.max()))
        # series that begin in a later stage: the stage they begin in is the first one shown; a stage
        # that begins after the last step shown (a term only an earlier stage logs) is not on this chart
        shown = [(name, first) for name, first in stages if x_lo < first <= x_hi]
        stages = tuple([(name, x_lo) for name, first in stages if first <= x_lo][-1:] + shown)
    staged = len(stages) > 1
    name_rows = max(1, min(NAME_ROWS, height - 5)) if staged else 0  # at most; fewer when they fit
    plot_w = width - GUTTER - 1
    if not named or plot_w < 8 or height - 3 - staged < 2:
        head.append("\n" + ("" if named else "no data"), style="dim")
        return head

    ys = np.concatenate([y for _, _, y in named])
    y_lo, y_hi = _span(float(ys.min()), float(ys.max()))
    if staged:
        columns = [min(plot_w - 1, max(0, int((first - x_lo) / (x_hi - x_lo) * (2 * plot_w - 1)) // 2)) for _, first in stages]
        names, owner = _stage_rows(stages, columns, plot_w, name_rows)
        name_rows = len(names)
    plot_h = height - 3 - name_rows
    dot_w, dot_h = 2 * plot_w, 4 * plot_h
    bits = np.zeros((plot_h, plot_w), dtype=np.uint8)
    color = np.full((plot_h, plot_w), -1, dtype=np.int16)
    for i, (name, x, y) in enumerate(named):
        px = (x - x_lo) / (x_hi - x_lo) * (dot_w - 1)
        py = (y_hi - y) / (y_hi - y_lo) * (dot_h - 1)  # row 0 is the top
        own = per_series.get(name, ()) if per_series else stages  # where this curve's run changes stage
        starts = np.array([first for _, first in own[1:]], dtype=np.float64)
        dots = [_dots(px[part], py[part]) for part in _pieces(x, starts)] if len(starts) else [_dots(px, py)]
        cx, cy = np.concatenate([d[0] for d in dots]), np.concatenate([d[1] for d in dots])
        cx, cy = np.clip(cx, 0, dot_w - 1), np.clip(cy, 0, dot_h - 1)
        rows, cols = cy // 4, cx // 2
        np.bitwise_or.at(bits, (rows, cols), _BITS[cy % 4, cx % 2])
        color[rows, cols] = i  # a shared cell shows the series drawn last

    labels = {0: fmt_num(y_hi), plot_h - 1: fmt_num(y_lo)}
    if plot_h >= 5:
        labels[(plot_h - 1) // 2] = fmt_num((y_hi + y_lo) / 2)
    out = head
    chars = np.where(bits > 0, bits.astype(np.int32) + 0x2800, 0x20)
    if staged:
        styles = _name_styles(stages, named, per_series)
        for row, own in zip(names, owner):
            out.append("\n" + " " * (GUTTER + 1))
            cuts = np.flatnonzero(np.diff(own)) + 1  # runs of one stage's cells become one styled span
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, plot_w]):
                out.append("".join(row[a:b]), style=styles[own[a]] if own[a] >= 0 else "dim")
        for at in columns[1:]:  # the rule fills the empty cells of the column where the stage begins
            empty = bits[:, at] == 0
            chars[empty, at], color[empty, at] = ord("┊"), RULE
    for r in range(plot_h):
        gutter = labels[r][:GUTTER].rjust(GUTTER) + "┤" if r in labels else " " * GUTTER + "│"
        out.append("\n" + gutter, style="dim")
        row_chars, row_color = chars[r], color[r]
        cuts = np.flatnonzero(np.diff(row_color)) + 1  # runs of one colour become one styled span
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, plot_w]):
            c = int(row_color[a])
            style = PALETTE[c % len(PALETTE)] if c >= 0 else "dim" if c == RULE else ""
            out.append("".join(map(chr, row_chars[a:b])), style=style)
    out.append("\n" + " " * GUTTER + "└" + "─" * plot_w, style="dim")
    span = x_hi - x_lo
    left, mid, right = (_step_label(v, span) for v in (x_lo, (x_lo + x_hi) / 2, x_hi))
    axis = [" "] * plot_w
    for text, at in ((left, 0), (mid, (plot_w - len(mid)) // 2), (right, plot_w - len(right))):
        if 0 <= at and at + len(text) <= plot_w:
            axis[at : at + len(text)] = text
    out.append("\n" + " " * (GUTTER + 1) + "".join(axis), style="dim")
    return out


class SeriesPlot(Widget):
    """Lines for several series sharing the step axis; redrawn only when handed new data
    or resized (the rendered text is cached per size)."""

    DEFAULT_CSS = """
    SeriesPlot {
        height: 1fr;
        min-height: 6;
        text-wrap: nowrap;  /* a legend wider than the plot (two long run names on Compare) is cut, */
        text-overflow: clip;  /* never wrapped: a wrapped line pushed the step labels off the bottom */
    }
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.title = title
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.note = "waiting for metrics"
        self.stages: Stages = ()
        self.per_series: dict[str, Stages] | None = None
        self.points = 0
        """How many points the last ``show`` handed over (tests check the downsample reached the widget)."""
        self._cache: tuple[tuple[int, int, int], Text] | None = None
        self._version = 0

    @property
    def buckets(self) -> int:
        """Min/max buckets for the plot's width: a min and a max per bucket is one point per
        braille dot column; more would not be visible."""
        return max(40, (self.size.width or 80) - GUTTER - 1)

    def show(self, series: dict[str, tuple[list[float], list[float]]], note: str = "", stages: Stages = (),
             per_series: dict[str, Stages] | None = None) -> None:
        """Draw ``series`` (name -> (steps, values)); ``stages`` (name, first step) draws a run's stages
        apart, ``per_series`` (series name -> its run's stages) each of several overlaid runs'."""
        self.series, self.note, self.per_series = series, note, per_series
        self.stages = every_stage(per_series) if per_series else stages
        self.points = sum(len(x) for x, _ in series.values())
        self._version += 1
        self.refresh()

    def text(self, width: int | None = None, height: int | None = None) -> str:
        """The chart as plain text (what a test or a log would show)."""
        w, h = width or self.size.width or 80, height or self.size.height or 12
        return render_chart(self.series, w, h, title=self.title, note=self.note, stages=self.stages,
                            per_series=self.per_series).plain

    def render(self) -> Text:
        key = (self.size.width, self.size.height, self._version)
        if self._cache is None or self._cache[0] != key:
            chart = render_chart(self.series, self.size.width, self.size.height, title=self.title,
                                 note=self.note, stages=self.stages, per_series=self.per_series)
            chart.no_wrap, chart.overflow = True, "crop"
            self._cache = (key, chart)
        return self._cache[1]
