"""The Compare screen: two or more runs, overlaid loss curves per shared term, and a config diff.

Curves come from the console's own metrics reader (:class:`voltx.console.series.
MetricSeries`: numeric columns, resumes resolved, corrupt lines skipped) in a worker
thread, downsampled to at most ``2 * BUCKETS`` points per series before they reach a plot
(a million-step run must not become a million-point widget). The config diff compares
each run's resolved config.toml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from voltx.console.widgets.charts import SeriesPlot
from voltx.console.series import MetricSeries
from voltx.config import tomllib
from voltx.runs.layout import RunPaths, load_manifest

BUCKETS = 200
MISSING = "—"


@dataclass
class RunCurves:
    """The loss curves of one run (downsampled) and its flattened resolved config."""

    dir: Path
    label: str
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def read_loss_curves(path: Path, buckets: int = BUCKETS) -> dict[str, tuple[list[float], list[float]]]:
    """(steps, values) per loss term of one metrics.jsonl, downsampled, resumes resolved."""
    reader = MetricSeries(path)
    reader.refresh()
    series = reader.snapshot()
    curves = {}
    for term in series.loss_terms:
        steps, values = series.downsampled(term, buckets)
        if steps:
            curves[term] = (steps, values)
    return curves


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def load_run(run_dir: Path) -> RunCurves:
    paths = RunPaths(run_dir)
    manifest = load_manifest(run_dir).record
    label = f"{manifest.phase or paths.phase}/{manifest.id or run_dir.name}"
    run = RunCurves(run_dir, label, curves=read_loss_curves(paths.metrics))
    try:
        run.config = flatten(tomllib.loads(paths.config.read_text(encoding="utf-8")))
    except FileNotFoundError:
        run.problem = "no config.toml"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        run.problem = f"config.toml unreadable: {exc}"
    return run


def shared_terms(runs: list[RunCurves]) -> list[str]:
    """Loss terms every run logged, in the first run's order."""
    if not runs:
        return []
    return [t for t in runs[0].curves if all(t in r.curves for r in runs[1:])]


def config_diff(runs: list[RunCurves]) -> list[tuple[str, list[str]]]:
    """(key, value per run) for every config key whose values differ or that some run lacks."""
    keys = sorted({k for r in runs if r.problem is None for k in r.config})
    rows = []
    for key in keys:
        values = [repr(r.config[key]) if key in r.config else MISSING for r in runs if r.problem is None]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


class CompareScreen(Screen):
    """Overlaid loss curves of the given runs per shared loss term, and their config diff."""

    CSS_PATH = "compare.tcss"
    HELP_TITLE = TITLE = "Compare runs"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("question_mark", "help", "Help")]

    def __init__(self, run_dirs: list[Path] | tuple[Path, ...]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        self.runs: list[RunCurves] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="compare-runs")
        with TabbedContent(id="compare-tabs"):
            with TabPane("Curves", id="compare-curves-tab"):
                yield VerticalScroll(id="compare-curves")
            with TabPane("Config diff", id="compare-config-tab"):
                yield Static(id="compare-config-note")
                yield DataTable(id="compare-config", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        header = self.query_one("#compare-runs", Static)
        if len(self.run_dirs) < 2:
            header.update("[b]Compare needs two or more runs.[/] Mark runs on the Runs screen (space), then press c.")
            self.query_one("#compare-tabs").display = False
            return
        header.update(f"Loading {len(self.run_dirs)} runs…")
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-load")
    def load(self) -> None:
        runs = [load_run(d) for d in self.run_dirs]
        self.app.call_from_thread(self.show, runs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.group == "compare-load":  # shown, never a crash
            error = event.worker.error
            self.query_one("#compare-runs", Static).update(f"[red]Could not read the runs: {escape(f'{type(error).__name__}: {error}')}[/]")

    def show(self, runs: list[RunCurves]) -> None:
        """Build the plots and the diff table (on the UI thread)."""
        self.runs = runs
        self.query_one("#compare-runs", Static).update(
            "  ".join(f"[b]{n + 1}[/] {r.label}" + (f" [red]({r.problem})[/]" if r.problem else "") for n, r in enumerate(runs))
        )
        box = self.query_one("#compare-curves", VerticalScroll)
        terms = shared_terms(runs)
        if not terms:
            box.mount(Static("These runs share no logged loss term (or have no metrics yet).", id="compare-no-curves"))
        for term in terms:
            plot = SeriesPlot(term, id=f"compare-plot-{term}", classes="compare-plot")
            box.mount(plot)
            plot.show({r.label: r.curves[term] for r in runs})

        table = self.query_one("#compare-config", DataTable)
        table.clear(columns=True)
        readable = [r for r in runs if r.problem is None]
        table.add_columns("key", *(r.label for r in readable))
        rows = config_diff(runs)
        for key, values in rows:
            table.add_row(key, *values, key=key)
        note = f"{len(rows)} config keys differ" if rows else "The resolved configs are identical."
        self.query_one("#compare-config-note", Static).update(note)

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
