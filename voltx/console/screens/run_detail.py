"""Run detail: curves, deliverables, RAR convergence, alerts, config, checkpoints, log tail.

Keys: ``1``–``8`` switch tabs (Loss, LR/Speed, Verdicts, RAR, Alerts, Config, Checkpoints,
Log) · escape back · ``x`` stop · ``R`` resume · ``a`` attach · ``e`` export csv · ``?``
help. ``read_only=True`` (``voltx attach``) drops the stop/resume/attach/export keys and
makes escape/q quit (the footer then says "esc Quit", not "Back").

A thread worker reads new bytes every ``poll_s`` seconds into the screen's reader
(:class:`~voltx.console.run_data.RunData`, which only that worker touches, one read at a time)
and hands the screen a frozen :class:`~voltx.console.run_data.RunView`; the screen swaps its
``view`` on the UI thread and redraws from it, so a draw never sees a half-updated run. The
active tab is redrawn at most once a poll (2 Hz by default), however fast the run logs, and
only when the view changed. A big metrics file first shows a strided preview, then the exact
downsample.
"""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Static, TabbedContent, TabPane

from voltx.console import actions
from voltx.formatting import fmt_duration, fmt_num
from voltx.console.run_data import RunData, RunView
from voltx.console.series import MetricSeries
from voltx.console.widgets.charts import SeriesPlot
from voltx.console.widgets.rar_panel import RarPanel
from voltx.console.widgets.scoreboard import Scoreboard
from voltx.console.screens.handoff import to_ui
from voltx.runs.store import eta_seconds, whole_run_steps

TABS = [("loss", "Loss"), ("speed", "LR/Speed"), ("verdicts", "Verdicts"), ("rar", "RAR"),
        ("alerts", "Alerts"), ("config", "Config"), ("checkpoints", "Ckpts"), ("log", "Log")]
ACTION_BINDINGS = [
    Binding("x", "stop", "Stop"),
    Binding("R", "resume", "Resume"),
    Binding("a", "attach", "Attach"),
    Binding("e", "export", "Export csv"),
]


class RunDetailScreen(Screen):
    HELP_TITLE = "Run detail"
    BINDINGS = [
        *(Binding(str(i), f"tab('{tab}')", label, show=False) for i, (tab, label) in enumerate(TABS, 1)),
        Binding("escape", "back", "Back"),
        Binding("escape", "leave", "Quit"),  # voltx attach: this is the only screen (check_action picks one)
        *ACTION_BINDINGS,
        Binding("question_mark", "help", "Help"),
    ]
    HELP_EXTRA = [("1-8", "switch tab: " + ", ".join(label for _, label in TABS), tuple(str(i) for i in range(1, len(TABS) + 1)))]

    def __init__(self, run_dir: Path, *, read_only: bool = False, poll_s: float = 0.5):
        super().__init__()
        self.run_dir = Path(run_dir)
        self._reader = RunData(self.run_dir)  # the read worker's alone
        self.view: RunView = self._reader.snapshot()
        """What the screen draws: the latest snapshot the worker handed over (swapped, never changed)."""
        self.attach_mode = read_only
        self.poll_s = poll_s
        self.redraws = 0
        self._loaded = False
        self._reading = True  # a read worker is running (_load first): _tick starts no second one
        self._log_shown = 0
        self._head_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="detail-head")
        with TabbedContent(id="tabs", initial="loss"):
            with TabPane("Loss", id="loss"):
                yield SeriesPlot("loss per term", id="plot-loss")
            with TabPane("LR/Speed", id="speed"):
                yield SeriesPlot("learning rate", id="plot-lr")
                yield SeriesPlot("samples/s", id="plot-speed")
            with TabPane("Verdicts", id="verdicts"):
                yield Scoreboard(id="scoreboard")
                yield Static(id="verdicts-empty")
            with TabPane("RAR", id="rar"):
                with VerticalScroll():
                    yield RarPanel(id="rar-panel")
            with TabPane("Alerts", id="alerts"):
                yield DataTable(id="alerts-table", cursor_type="row")
                yield Static(id="alerts-empty")
            with TabPane("Config", id="config"):
                with VerticalScroll():
                    yield Static(id="config-text")
            with TabPane("Ckpts", id="checkpoints"):
                yield DataTable(id="checkpoints-table", cursor_type="row")
                yield Static(id="checkpoints-empty")
            with TabPane("Log", id="log"):
                yield Log(id="log-tail", max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"{self.run_dir.parent.name}/{self.run_dir.name}"
        self.query_one("#alerts-table", DataTable).add_columns("step", "severity", "rule", "message")
        self.query_one("#checkpoints-table", DataTable).add_columns("step", "directory", "write time")
        self._load()
        self.set_interval(self.poll_s, self._tick)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """``voltx attach`` is a read-only look: no stop, resume, attach or export keys."""
        if self.attach_mode and action in ("stop", "resume", "attach", "export", "back"):
            return False
        if not self.attach_mode and action == "leave":
            return False
        return True

    # -- reading (thread workers) ----------------------------------------------------------
    @work(thread=True, group="read")
    def _load(self) -> None:
        reader, view = self._reader, None
        try:
            preview = MetricSeries(reader.paths.metrics)
            if preview.read_preview():  # a big file: show a strided sample at once, then the real thing
                full, reader.series = reader.series, preview
                reader.refresh(metrics=False)
                to_ui(self, self._show, reader.snapshot())
                full.refresh()
                reader.series = full
            reader.refresh()
            view = reader.snapshot()
        finally:
            to_ui(self, self._read_done, view, loaded=True)

    @work(thread=True, group="read")
    def _poll(self) -> None:
        view = None
        try:
            if self._reader.refresh():
                view = self._reader.snapshot()
        finally:
            to_ui(self, self._read_done, view)

    def _tick(self) -> None:
        if self._loaded and not self._reading:
            self._reading = True
            self._poll()

    def _read_done(self, view: RunView | None, loaded: bool = False) -> None:
        """On the UI thread, when a read ends (one call, so no later read can overtake its view)."""
        self._reading = False
        self._loaded |= loaded
        if view is not None:
            self._show(view, force=loaded)

    def _show(self, view: RunView, force: bool = False) -> None:
        """On the UI thread: take the worker's new snapshot and redraw from it."""
        if view is not self.view or force:
            self.view = view
            self.redraw()

    # -- drawing ---------------------------------------------------------------------------
    def redraw(self) -> None:
        """Draw the header and the active tab only (switching tabs draws the new one)."""
        self.redraws += 1
        self._draw_head()
        active = self.query_one("#tabs", TabbedContent).active
        getattr(self, f"_draw_{active}")()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.redraw()

    def _draw_head(self) -> None:
        d, s = self.view, self.view.series
        step = s.latest("step")
        total = whole_run_steps(s.latest("total_steps"), d.manifest.record.total_steps)
        parts = [f"[b]{d.status}[/]", f"step {'-' if step is None else int(step)}" + (f"/{total}" if total else "")]
        latest = [(t, s.latest(t)) for t in s.loss_terms]
        latest = [(t, v) for t, v in latest if v is not None][:3]  # a term an earlier stage logged is not "-"
        if latest:
            parts.append(" ".join(f"{escape(t)}={fmt_num(v)}" for t, v in latest))
        if s.latest("samples_per_sec") is not None:
            parts.append(f"{fmt_num(s.latest('samples_per_sec'))} samples/s")
        eta = eta_seconds(d.status, step, total, s.latest("steps_per_sec"), s.latest("wall_steps_per_sec"))
        if eta is not None:
            parts.append(f"ETA {fmt_duration(eta)}")
        lines = ["   ".join(parts)]
        notes = []
        if d.problem:
            notes.append(f"[red]{escape(d.problem)}[/]" + (" (read-only)" if d.read_only else ""))
        if s.preview:
            notes.append("[yellow]preview: sampled lines, reading the whole file…[/]")
        if d.corrupt_count:
            notes.append(f"[yellow]{d.corrupt_count} corrupt line(s) skipped[/]")
        if d.alerts:
            notes.append(f"[red]{len(d.alerts)} alert(s)[/]")
        if d.manifest.record.message:
            notes.append(escape(d.manifest.record.message))  # config errors name tables: [codebook]
        if notes:
            lines.append("  ".join(notes))
        text = "\n".join(lines)
        if text != self._head_text:  # the header is height auto: skip the layout pass when nothing changed
            self._head_text = text
            self.query_one("#detail-head", Static).update(text)

    def _draw_loss(self) -> None:
        s = self.view.series
        note = "sampled" if s.preview else ("no metrics logged yet" if not len(s) else "")
        plot = self.query_one("#plot-loss", SeriesPlot)
        plot.show({t: s.downsampled(t, plot.buckets) for t in s.loss_terms}, note=note, stages=s.stages())

    def _draw_speed(self) -> None:
        s = self.view.series
        for selector, key, label in (("#plot-lr", "lr", "lr"), ("#plot-speed", "samples_per_sec", "samples/s")):
            plot = self.query_one(selector, SeriesPlot)
            plot.show({label: s.downsampled(key, plot.buckets)} if key in s.columns else {}, stages=s.stages())

    def _draw_verdicts(self) -> None:
        verdicts = self.view.verdicts
        self.query_one("#scoreboard", Scoreboard).show(verdicts)
        empty = self.query_one("#verdicts-empty", Static)
        empty.update("No evaluations or deliverable verdicts yet.")
        empty.display = not verdicts

    def _draw_rar(self) -> None:
        self.query_one("#rar-panel", RarPanel).show(self.view.latest_rar, self.view.series.latest("rar/iterations_mean"))

    def _draw_alerts(self) -> None:
        table = self.query_one("#alerts-table", DataTable)
        table.clear()
        for a in reversed(self.view.alerts):
            sev = a.severity or "-"
            style = "bold red" if sev == "error" else "yellow"
            table.add_row(Text("-" if a.step is None else str(a.step)), Text(sev, style=style), Text(a.rule), Text(a.message))
        empty = self.query_one("#alerts-empty", Static)
        empty.update("No alerts.")
        empty.display = not self.view.alerts

    def _draw_config(self) -> None:
        text = self.view.config_text
        widget = self.query_one("#config-text", Static)
        widget.update(Syntax(text, "toml", theme="ansi_dark", word_wrap=True) if text else "No config.toml in this run.")

    def _draw_checkpoints(self) -> None:
        table = self.query_one("#checkpoints-table", DataTable)
        table.clear()
        rows = self.view.checkpoints
        for step, name, seconds in rows:
            table.add_row(str(step), name, seconds)
        empty = self.query_one("#checkpoints-empty", Static)
        empty.update("No committed checkpoints.")
        empty.display = not rows

    def _draw_log(self) -> None:
        log, view = self.query_one("#log-tail", Log), self.view
        new = view.log_total - self._log_shown
        if not view.log_total:
            if not log.line_count:
                log.write_line(f"(no output yet in {view.paths.stdout.name})")
            return
        if not self._log_shown or new > len(view.log):  # first draw, or more came than the tail keeps
            log.clear()
            new = len(view.log)
        if new:  # append only what is new: rewriting the whole tail twice a second is what costs
            log.write_lines(view.log[-new:])
        self._log_shown = view.log_total

    # -- keys ------------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_leave(self) -> None:
        self.app.exit()  # the only screen of `voltx attach`

    def action_stop(self) -> None:
        actions.stop(self.app, self.run_dir, self.view.read_only)

    def action_resume(self) -> None:
        actions.resume(self.app, self.run_dir, self.view.read_only)

    def action_attach(self) -> None:
        actions.attach(self.app, self.run_dir)

    def action_export(self) -> None:
        actions.export(self.app, self.run_dir, "csv")

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
