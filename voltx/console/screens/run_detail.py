"""Run detail: curves, deliverables, RAR convergence, alerts, config, checkpoints, log tail.

Keys: ``1``–``8`` switch tabs (Loss, LR/Speed, Verdicts, RAR, Alerts, Config, Checkpoints,
Log) · escape back · ``x`` stop · ``R`` resume · ``a`` attach · ``e`` export csv · ``?``
help. ``read_only=True`` (``voltx attach``) drops the stop/resume/attach/export keys and
makes escape/q quit (the footer then says "esc Quit", not "Back").

A thread worker reads new bytes every ``poll_s`` seconds; the active tab is redrawn at
most that often (2 Hz by default), however fast the run logs: updates are coalesced.
A big metrics file first shows a strided preview, then the exact downsample.
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
from voltx.console.run_data import RunData
from voltx.console.series import MetricSeries
from voltx.console.widgets.charts import SeriesPlot
from voltx.console.widgets.rar_panel import RarPanel
from voltx.console.widgets.scoreboard import Scoreboard

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
        self.data = RunData(self.run_dir)
        self.attach_mode = read_only
        self.poll_s = poll_s
        self.redraws = 0
        self._dirty = True
        self._loaded = False
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
    @work(thread=True, exclusive=True, group="read")
    def _load(self) -> None:
        preview = MetricSeries(self.data.paths.metrics)
        if preview.read_preview():  # a big file: show a strided sample at once, then the real thing
            full, self.data.series = self.data.series, preview
            self.data.refresh(metrics=False)
            self.app.call_from_thread(self._mark_dirty, True)
            full.refresh()
            self.data.series = full
        self.data.refresh()
        self._loaded = True
        self.app.call_from_thread(self._mark_dirty, True)

    @work(thread=True, exclusive=True, group="read")
    def _poll(self) -> None:
        changed = self.data.refresh()
        self.app.call_from_thread(self._mark_dirty, changed)

    def _tick(self) -> None:
        if self._loaded:
            self._poll()

    def _mark_dirty(self, changed: bool) -> None:
        self._dirty |= changed
        if self._dirty:
            self._dirty = False
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
        d, s = self.data, self.data.series
        step = s.latest("step")
        total = d.manifest.record.total_steps
        parts = [f"[b]{d.status}[/]", f"step {'-' if step is None else int(step)}" + (f"/{total}" if total else "")]
        latest = [(t, s.latest(t)) for t in s.loss_terms]
        latest = [(t, v) for t, v in latest if v is not None][:3]  # a term an earlier stage logged is not "-"
        if latest:
            parts.append(" ".join(f"{escape(t)}={fmt_num(v)}" for t, v in latest))
        if s.latest("samples_per_sec") is not None:
            parts.append(f"{fmt_num(s.latest('samples_per_sec'))} samples/s")
        sps = s.latest("steps_per_sec")
        if d.status == "running" and sps and total is not None and step is not None:
            parts.append(f"ETA {fmt_duration((total - step) / sps)}")
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
        s = self.data.series
        note = "sampled" if s.preview else ("no metrics logged yet" if not len(s) else "")
        plot = self.query_one("#plot-loss", SeriesPlot)
        plot.show({t: s.downsampled(t, plot.buckets) for t in s.loss_terms}, note=note)

    def _draw_speed(self) -> None:
        s = self.data.series
        for selector, key, label in (("#plot-lr", "lr", "lr"), ("#plot-speed", "samples_per_sec", "samples/s")):
            plot = self.query_one(selector, SeriesPlot)
            plot.show({label: s.downsampled(key, plot.buckets)} if key in s.columns else {})

    def _draw_verdicts(self) -> None:
        verdicts = self.data.deliverables()
        self.query_one("#scoreboard", Scoreboard).show(verdicts)
        empty = self.query_one("#verdicts-empty", Static)
        empty.update("No evaluations or deliverable verdicts yet.")
        empty.display = not verdicts

    def _draw_rar(self) -> None:
        self.query_one("#rar-panel", RarPanel).show(self.data.rar[-1] if self.data.rar else None, self.data.series.latest("rar/iterations_mean"))

    def _draw_alerts(self) -> None:
        table = self.query_one("#alerts-table", DataTable)
        table.clear()
        for a in reversed(self.data.alerts):
            sev = a.severity or "-"
            style = "bold red" if sev == "error" else "yellow"
            table.add_row(Text("-" if a.step is None else str(a.step)), Text(sev, style=style), Text(a.rule), Text(a.message))
        empty = self.query_one("#alerts-empty", Static)
        empty.update("No alerts.")
        empty.display = not self.data.alerts

    def _draw_config(self) -> None:
        text = self.data.config_text
        widget = self.query_one("#config-text", Static)
        widget.update(Syntax(text, "toml", theme="ansi_dark", word_wrap=True) if text else "No config.toml in this run.")

    def _draw_checkpoints(self) -> None:
        table = self.query_one("#checkpoints-table", DataTable)
        table.clear()
        rows = self.data.checkpoint_rows()
        for step, name, seconds in rows:
            table.add_row(str(step), name, seconds)
        empty = self.query_one("#checkpoints-empty", Static)
        empty.update("No committed checkpoints.")
        empty.display = not rows

    def _draw_log(self) -> None:
        log = self.query_one("#log-tail", Log)
        new = self.data.log_total - self._log_shown
        if not self.data.log_total:
            if not log.line_count:
                log.write_line(f"(no output yet in {self.data.paths.stdout.name})")
            return
        if not self._log_shown or new > len(self.data.log):  # first draw, or more came than the tail keeps
            log.clear()
            new = len(self.data.log)
        if new:  # append only what is new: rewriting the whole tail twice a second is what costs
            log.write_lines(list(self.data.log)[-new:])
        self._log_shown = self.data.log_total

    # -- keys ------------------------------------------------------------------------------
    def action_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_leave(self) -> None:
        self.app.exit()  # the only screen of `voltx attach`

    def action_stop(self) -> None:
        actions.stop(self.app, self.run_dir, self.data.read_only)

    def action_resume(self) -> None:
        actions.resume(self.app, self.run_dir, self.data.read_only)

    def action_attach(self) -> None:
        actions.attach(self.app, self.run_dir)

    def action_export(self) -> None:
        actions.export(self.app, self.run_dir, "csv")

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
