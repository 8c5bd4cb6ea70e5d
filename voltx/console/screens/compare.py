"""The Compare screen: two or more runs ranked, overlaid loss curves per shared term, and a config diff.

The ranking orders the runs by their first deliverable's metric that every run evaluated
(higher first for ``>``/``>=``, lower first for ``<``/``<=``), beside the other metrics of that
stage every run evaluated (an LVM sweep's runs: validation cosine beside copy-last, context mean
and ridge). A metric some run did not evaluate ranks nothing.

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

from voltx.console.widgets.charts import SeriesPlot, Stages
from voltx.console.series import MetricSeries
from voltx.console.screens.handoff import to_ui
from voltx.config import tomllib
from voltx.formatting import flatten
from voltx.runs.jsonl import read_jsonl
from voltx.runs.layout import RunPaths, load_manifest
from voltx.runs.records import Deliverable, Evaluation, parse_event

BUCKETS = 200
MISSING = "—"


@dataclass
class RunCurves:
    """The loss curves of one run (downsampled) and its flattened resolved config."""

    dir: Path
    label: str
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    stages: Stages = ()
    """(stage, first step) of each of its stages: the curves are drawn apart where each begins."""
    config: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    evaluations: dict[str, float] = field(default_factory=dict)
    """The latest value of every evaluated metric (``<stage>/<metric>``)."""
    deliverables: dict[str, str] = field(default_factory=dict)
    """The op of each judged deliverable's metric, in the order the run judged them."""


@dataclass
class Ranking:
    """Runs best first by ``metric`` (None: no metric every run evaluated), and the shown columns."""

    metric: str | None
    higher_is_better: bool
    columns: list[str]
    rows: list[tuple[RunCurves, list[float]]]


def read_results(run: RunCurves) -> None:
    """Fill ``run.evaluations`` and ``run.deliverables`` from its events (damaged lines skipped)."""
    got = read_jsonl(RunPaths(run.dir).events, parse=parse_event)
    for ev in got.records:
        if isinstance(ev, Evaluation):
            run.evaluations.update({k: v for k, v in ev.metrics.items() if v is not None})
        elif isinstance(ev, Deliverable) and ev.op is not None:
            run.deliverables.setdefault(ev.metric, ev.op)


def rank(runs: list[RunCurves]) -> Ranking:
    """The runs ranked by the first deliverable metric (of the first run that has one) every run
    evaluated, else by the first metric every run evaluated; see the module docstring."""
    shared = [k for k in (runs[0].evaluations if runs else {}) if all(k in r.evaluations for r in runs)]
    ops = next((r.deliverables for r in runs if r.deliverables), {})
    metric = next((m for m in ops if m in shared), shared[0] if shared else None)
    if metric is None:
        return Ranking(None, True, [], [(r, []) for r in runs])
    higher = ops.get(metric, ">") in (">", ">=")
    stage = metric.split("/", 1)[0] + "/"
    columns = [metric, *(k for k in shared if k.startswith(stage) and k != metric)]
    rows = [(r, [r.evaluations.get(c) for c in columns]) for r in runs]
    rows.sort(key=lambda row: -row[1][0] if higher else row[1][0])
    return Ranking(metric, higher, columns, rows)


def read_curves(path: Path, buckets: int = BUCKETS) -> tuple[dict[str, tuple[list[float], list[float]]], Stages]:
    """(steps, values) per loss term of one metrics.jsonl, downsampled, resumes resolved; and the
    run's stages (the Loss tab's: ``SeriesView.stages``)."""
    reader = MetricSeries(path)
    reader.refresh()
    series = reader.snapshot()
    curves = {}
    for term in series.loss_terms:
        steps, values = series.downsampled(term, buckets)
        if steps:
            curves[term] = (steps, values)
    return curves, series.stages()


def read_loss_curves(path: Path, buckets: int = BUCKETS) -> dict[str, tuple[list[float], list[float]]]:
    """(steps, values) per loss term of one metrics.jsonl, downsampled, resumes resolved."""
    return read_curves(path, buckets)[0]


def load_run(run_dir: Path) -> RunCurves:
    paths = RunPaths(run_dir)
    manifest = load_manifest(run_dir).record
    label = f"{manifest.phase or paths.phase}/{manifest.id or run_dir.name}"
    curves, stages = read_curves(paths.metrics)
    run = RunCurves(run_dir, label, curves=curves, stages=stages)
    try:
        run.config = flatten(tomllib.loads(paths.config.read_text(encoding="utf-8")), ".")
    except FileNotFoundError:
        run.problem = "no config.toml"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        run.problem = f"config.toml unreadable: {exc}"
    read_results(run)
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
            with TabPane("Ranking", id="compare-ranking-tab"):
                yield Static(id="compare-ranking-note")
                yield DataTable(id="compare-ranking", cursor_type="row", zebra_stripes=True)
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
        to_ui(self, self.show, runs)

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
        self.show_ranking(runs)
        box = self.query_one("#compare-curves", VerticalScroll)
        terms = shared_terms(runs)
        if not terms:
            box.mount(Static("These runs share no logged loss term (or have no metrics yet).", id="compare-no-curves"))
        for term in terms:
            plot = SeriesPlot(term, id=f"compare-plot-{term}", classes="compare-plot")
            box.mount(plot)
            plot.show({r.label: r.curves[term] for r in runs}, per_series={r.label: r.stages for r in runs})

        table = self.query_one("#compare-config", DataTable)
        table.clear(columns=True)
        readable = [r for r in runs if r.problem is None]
        table.add_columns("key", *(r.label for r in readable))
        rows = config_diff(runs)
        for key, values in rows:
            table.add_row(key, *values, key=key)
        note = f"{len(rows)} config keys differ" if rows else "The resolved configs are identical."
        self.query_one("#compare-config-note", Static).update(note)

    def show_ranking(self, runs: list[RunCurves]) -> None:
        ranking = rank(runs)
        table = self.query_one("#compare-ranking", DataTable)
        table.clear(columns=True)
        table.add_columns("#", "run", *ranking.columns)
        for place, (run, values) in enumerate(ranking.rows, start=1):
            table.add_row(str(place), run.label, *(f"{v:.4f}" for v in values), key=str(run.dir))
        note = (f"Ranked by {ranking.metric} ({'higher' if ranking.higher_is_better else 'lower'} is better), beside the "
                "stage's other metrics every run evaluated." if ranking.metric else "These runs share no evaluated metric to rank by.")
        self.query_one("#compare-ranking-note", Static).update(note)

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
