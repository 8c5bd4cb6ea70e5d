"""A plot of named series (plotext), redrawn only when handed new downsampled data.

The series are already downsampled (``voltx.console.series.downsample``: at most ~2000
points each), so one redraw costs milliseconds whatever the run's length.
"""

from __future__ import annotations

from textual_plotext import PlotextPlot


class SeriesPlot(PlotextPlot):
    """Lines for several series sharing the step axis."""

    def __init__(self, title: str, *, ylabel: str = "", log_y: bool = False, id: str | None = None):
        super().__init__(id=id)
        self.title = title
        self.ylabel = ylabel
        self.log_y = log_y
        self.points = 0
        """How many points the last draw plotted (tests check the downsample reached the widget)."""

    @property
    def buckets(self) -> int:
        """Min/max buckets for the plot's width: a min and a max per bucket gives one point per
        column, and each point costs plotext time on every redraw (more would not be visible)."""
        return max(40, (self.size.width or 80) // 2)

    def on_mount(self) -> None:
        super().on_mount()  # PlotextPlot follows the app theme from here
        self.show({}, note="waiting for metrics")

    def show(self, series: dict[str, tuple[list[float], list[float]]], note: str = "") -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"{self.title}{f'  ({note})' if note else ''}")
        plt.xlabel("step")
        if self.ylabel:
            plt.ylabel(self.ylabel)
        self.points = 0
        for name, (x, y) in series.items():
            if not x:
                continue
            if self.log_y and min(y) > 0:
                plt.yscale("log")
            plt.plot(x, y, label=name, marker="braille")
            self.points += len(x)
        self.refresh()
