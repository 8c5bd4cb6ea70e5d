"""The runs screen: every run under the roots, live, with the actions on the selected one.

Keys (also in the ``?`` help, which reads BINDINGS): ``n`` launch · ``?`` help · ``q`` quit
(first, so an 80-column footer shows them) · enter detail · home/end first/last run · ``/``
filter · ``s`` next sort column (a header click sorts by it; again reverses) · space mark ·
``c`` compare marked · ``x`` stop · ``R`` resume · ``a`` attach · ``e`` export csv ·
``S`` system · ``P`` plugins. After a launch the cursor moves to the new run once it appears.

A thread worker re-scans every ``poll_s`` seconds (``RunIndex.scan`` re-reads only changed
files) and the table is rebuilt only when a row changed. The index belongs to the worker: it
hands the screen a read-only snapshot of frozen run summaries, which the screen draws from.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Static

from voltx.console import actions
from voltx.console.data import RunIndex
from voltx.runs.store import RunSummary
from voltx.formatting import fmt_duration, fmt_num, fmt_time
from voltx.console.widgets.runs_table import RunsTable
from voltx.console.screens.handoff import to_ui

STATUS_STYLE = {"running": "bold green", "finished": "green", "failed": "bold red", "diverged": "bold red",
                "preempted": "yellow", "stale": "bold yellow", "interrupted": "yellow", "damaged": "bold red", "unknown": "dim"}
COLUMNS = [  # (key, title, sort key)
    ("mark", " ", None),
    ("phase", "phase", lambda r: r.phase),
    ("id", "run", lambda r: r.id),
    ("status", "status", lambda r: r.status),
    ("step", "step", lambda r: r.step or 0),
    ("loss", "loss", lambda r: r.loss if r.loss is not None else float("inf")),
    ("speed", "samples/s", lambda r: r.samples_per_sec or 0.0),
    ("eta", "ETA", lambda r: r.eta_s if r.eta_s is not None else float("inf")),
    ("host", "host", lambda r: r.host or ""),
    ("started", "started", lambda r: r.started_at or 0.0),
]
SORTABLE = [c[0] for c in COLUMNS if c[2]]
TITLES = {c[0]: c[1] for c in COLUMNS}


COMPACT_WIDTH = 120
"""Below this many columns the table keeps what fits 80: no samples/s, host, start time or
extra loss terms, and a run's problem is a ``!`` (the detail view spells it out)."""
COMPACT_HIDDEN = {"speed", "host", "started"}
TERMS_WIDTH = 140
"""From this many columns a loss cell adds up to two more terms (``2.73 contrastive=2.73 role=2.74``):
about 25 columns more than the rest of the full table needs, which at 120 would cut the start time off."""


def row_cells(row: RunSummary, marked: bool, compact: bool = False, terms: bool | None = None) -> list[str]:
    """The row's cells; ``terms``: the loss cell adds the run's other loss terms (default: unless ``compact``)."""
    terms = not compact if terms is None else terms
    style = STATUS_STYLE.get(row.status, "")
    status = f"[{style}]{row.status}[/]" if style else row.status
    if row.problem:
        status += " [red]![/]" if compact else f" [red]({escape(row.problem)})[/]"
    step = "-" if row.step is None else (f"{row.step}/{row.total_steps}" if row.total_steps else str(row.step))
    headline = "loss" if "loss" in row.losses else next(iter(row.losses), None)
    others = [f"{escape(k.removeprefix('loss_'))}={fmt_num(v, 3)}" for k, v in row.losses.items() if k != headline][:2]
    loss = fmt_num(row.loss) + (f" [dim]{' '.join(others)}[/]" if others and terms else "")
    cells = dict(mark="●" if marked else " ", phase=escape(row.phase), id=escape(row.id), status=status, step=step,
                 loss=loss, speed=fmt_num(row.samples_per_sec, 4), eta=fmt_duration(row.eta_s),
                 host=escape(row.host or "-"), started=fmt_time(row.started_at))
    return [cells[key] for key, _, _ in COLUMNS if not (compact and key in COMPACT_HIDDEN)]


class RunsScreen(Screen):
    HELP_TITLE = "Runs"
    BINDINGS = [  # the footer shows them in this order and cuts what does not fit: n, ? and q first
        Binding("n", "launch", "Launch"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("enter", "open", "Detail", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("x", "stop", "Stop"),
        Binding("R", "resume", "Resume"),
        Binding("a", "attach", "Attach"),
        Binding("e", "export", "Export csv"),
        Binding("S", "system", "System"),
        Binding("P", "plugins", "Plugins"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    HELP_EXTRA = [  # (key as shown, what it does, the bindings it stands for)
        ("enter", "open the selected run's detail", ("enter",)),
        ("home / end", "first / last run", ()),
        ("click header", "sort by that column (again: reverse)", ()),
    ]

    def __init__(self, roots: list[Path], poll_s: float = 1.0):
        super().__init__()
        self.roots = roots
        self.index = RunIndex(roots)
        """Scanned by the worker only; the screen reads :attr:`rows`."""
        self.rows: Mapping[Path, RunSummary] = MappingProxyType({})
        """The runs as of the last scan (a read-only copy the worker hands over; summaries are frozen)."""
        self.poll_s = poll_s
        self.marked: set[Path] = set()
        self.filter_text = ""
        self.sort_key = "started"
        self.sort_reverse = True
        self.scans = 0
        self._roots_text = ""
        self._states = []
        self.compact: bool | None = None  # set from the width on mount and on resize
        self.terms: bool | None = None  # likewise (TERMS_WIDTH)
        self.select_when_listed: str | None = None
        """A launched run's id: the cursor moves to it when a scan first lists it."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="roots-state")
        yield Input(placeholder="filter: phase, run id, status, host (enter keeps, escape clears)", id="filter")
        yield RunsTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static(id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "voltx-console"
        self._set_columns()
        self.query_one("#filter", Input).display = False
        self.query_one("#runs", DataTable).focus()
        self.poll()
        self.set_interval(self.poll_s, self.poll)

    def _set_columns(self) -> bool:
        """(Re)build the columns for the width; True when they changed."""
        compact, terms = self.app.size.width < COMPACT_WIDTH, self.app.size.width >= TERMS_WIDTH
        if (compact, terms) == (self.compact, self.terms):
            return False
        self.compact, self.terms = compact, terms
        self._add_columns()
        return True

    def _add_columns(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        for key, title, _ in COLUMNS:
            if not (self.compact and key in COMPACT_HIDDEN):
                table.add_column(title, key=key)

    def on_resize(self) -> None:
        if self._set_columns():
            self.rebuild()

    # -- data ------------------------------------------------------------------------------
    def poll(self) -> None:
        if self.is_current:  # covered by a run detail or a dialog: nobody sees the table, skip the scan
            self._scan()

    def on_screen_resume(self) -> None:
        if self.scans:  # back from another screen: show what changed meanwhile at once
            self._scan()

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self) -> None:
        changed = self.index.scan()
        states = self.index.states()
        to_ui(self, self._show, changed or self.scans == 0, states, MappingProxyType(dict(self.index.rows)))

    def _show(self, changed: bool, states, rows: Mapping[Path, RunSummary]) -> None:
        self.scans += 1
        self._states = states
        self.rows = rows
        if changed:
            self.rebuild()
        else:
            self._show_head()

    def _show_head(self) -> None:
        """Roots, count, filter and sort order, and any root problem (called on every change)."""
        messages = [s.message for s in self._states if s.message]
        roots = ", ".join(str(s.path) for s in self._states) or ", ".join(map(str, self.roots))
        head = f"runs: {len(self.rows)} under {escape(roots)}   sorted by {TITLES[self.sort_key]} {'↓' if self.sort_reverse else '↑'}"
        if self.filter_text:
            head += f"   filter: {escape(repr(self.filter_text))}"
        text = head + "".join(f"\n[yellow]{escape(m)}[/]" for m in messages)
        if text != self._roots_text:  # an unchanged update would still cost a layout pass
            self._roots_text = text
            self.query_one("#roots-state", Static).update(text)

    def visible_rows(self) -> list[RunSummary]:
        rows = list(self.rows.values())
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [r for r in rows if any(needle in (v or "").lower() for v in (r.phase, r.id, r.status, r.host, r.problem))]
        key = dict((c[0], c[2]) for c in COLUMNS)[self.sort_key]
        return sorted(rows, key=key, reverse=self.sort_reverse)

    def rebuild(self) -> None:
        table = self.query_one("#runs", DataTable)
        current = self.selected
        rows = self.visible_rows()
        self._add_columns()  # fresh columns: a DataTable column only grows, so a cell that got shorter (a run
        # past its three-term encoder) would keep the table wider than the screen, the start time cut off
        for row in rows:
            table.add_row(*row_cells(row, row.dir in self.marked, bool(self.compact), bool(self.terms)), key=str(row.dir))
        launched = next((r.dir for r in rows if r.dir.name == self.select_when_listed), None)
        if launched is not None:
            self.select_when_listed = None
            current = launched
        if current is not None and str(current) in table.rows:
            table.move_cursor(row=table.get_row_index(str(current)))
        empty = self.query_one("#runs-empty", Static)
        if not rows:
            empty.update("No runs match the filter." if self.filter_text else "No runs yet. Press n to launch one, or start one with `voltx run <phase>`.")
        empty.display = not rows
        self._show_head()

    @property
    def selected(self) -> Path | None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return Path(key.value) if key.value else None

    def _selected_row(self) -> RunSummary | None:
        sel = self.selected
        if sel is None:
            self.notify("No run selected.", severity="warning")
            return None
        return self.rows.get(sel)

    # -- filter and sort -------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = bool(self.filter_text)
        self.query_one("#runs", DataTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.filter_text = ""
        self.rebuild()
        self.query_one("#runs", DataTable).focus()

    def action_sort(self) -> None:
        self.sort_key = SORTABLE[(SORTABLE.index(self.sort_key) + 1) % len(SORTABLE)]
        self.sort_reverse = self.sort_key in ("started", "step", "speed")
        self.rebuild()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key not in SORTABLE:
            return
        self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key = key
        self.rebuild()

    # -- actions ---------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self._selected_row()
        if row is not None:
            from voltx.console.screens.run_detail import RunDetailScreen

            self.app.push_screen(RunDetailScreen(row.dir))

    def action_mark(self) -> None:
        sel = self.selected
        if sel is None:
            return
        self.marked.symmetric_difference_update({sel})
        self.query_one("#runs", DataTable).update_cell(str(sel), "mark", "●" if sel in self.marked else " ")

    def action_compare(self) -> None:
        runs = [r for r in self.visible_rows() if r.dir in self.marked]
        if len(runs) < 2:
            self.notify("Mark two or more runs with space, then press c to compare them.", severity="warning")
            return
        try:
            from voltx.console.screens.compare import CompareScreen
        except ImportError as exc:
            self.notify(f"compare screen unavailable: {exc}", severity="error")
            return
        self.app.push_screen(CompareScreen([r.dir for r in runs]))

    def action_stop(self) -> None:
        row = self._selected_row()
        if row is not None:
            actions.stop(self.app, row.dir, row.read_only)

    def action_resume(self) -> None:
        row = self._selected_row()
        if row is not None:
            actions.resume(self.app, row.dir, row.read_only)

    def action_attach(self) -> None:
        row = self._selected_row()
        if row is not None:
            actions.attach(self.app, row.dir)

    def action_export(self) -> None:
        row = self._selected_row()
        if row is not None:
            actions.export(self.app, row.dir, "csv")

    def action_launch(self) -> None:
        state = self.index.states()[0]
        if not state.writable:
            self.notify(state.message or f"cannot launch into {state.path}", severity="error")
            return
        try:
            from voltx.console.screens.launch import LaunchScreen
        except ImportError as exc:
            self.notify(f"launch screen unavailable: {exc}", severity="error")
            return
        self.app.push_screen(LaunchScreen(state.path), self._launch)

    def _launch(self, request) -> None:
        if request is None:
            return
        try:
            from voltx.runs.launch import launch_run
        except ImportError as exc:
            self.notify(f"launching is unavailable: {exc}", severity="error")
            return
        from voltx.errors import VoltxError

        try:
            launched = launch_run(request.phase, runs_dir=self.roots[0], preset=request.preset,
                                  overrides=tuple(request.overrides), use_tmux=request.use_tmux,
                                  config_path=request.config_path, nproc_per_node=request.nproc_per_node)
        except (VoltxError, OSError) as exc:
            self.notify(f"launch failed: {exc}", severity="error")
            return
        from voltx.console.state import LaunchChoice, remember_launch

        remember_launch(LaunchChoice(request.phase, request.preset))  # the next `n` opens on it
        self.select_when_listed = launched.run_id
        where = f"tmux session {launched.tmux_session}" if launched.tmux_session else f"pid {launched.pid}"
        self.notify(f"launched {launched.phase} run {launched.run_id} ({where})", title="launch")
        self.poll()

    def action_system(self) -> None:
        try:
            from voltx.console.screens.system import SystemScreen
        except ImportError as exc:
            self.notify(f"system screen unavailable: {exc}", severity="error")
            return
        self.app.push_screen(SystemScreen(self.roots))

    def action_plugins(self) -> None:
        try:
            from voltx.console.screens.plugins import PluginsScreen
        except ImportError as exc:
            self.notify(f"plugins screen unavailable: {exc}", severity="error")
            return
        self.app.push_screen(PluginsScreen())

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
