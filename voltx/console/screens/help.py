"""``?``: every key binding of the screen underneath, read from its BINDINGS (never a stale copy)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GLOBAL = [("?", "this help"), ("q", "quit"), ("ctrl+p", "command palette")]


def bindings_table(screen: Screen) -> Table:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    seen = set()
    for b in getattr(screen, "BINDINGS", []):
        enabled = screen.check_action(b.action.split("(")[0], ()) if isinstance(b, Binding) else False
        if isinstance(b, Binding) and b.description and b.key not in seen and enabled is not False:
            seen.add(b.key)
            table.add_row(b.key.replace(",", " / "), b.description)
    for key, what in getattr(screen, "HELP_EXTRA", []):
        table.add_row(key, what)
    for key, what in GLOBAL:
        if key not in seen:
            table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the bindings of ``screen``; escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, screen: Screen):
        super().__init__()
        self.target = screen

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(f"[b]{getattr(self.target, 'HELP_TITLE', 'voltx-console')}[/]  keys", id="help-title")
            yield Static(bindings_table(self.target), id="help-table")
            yield Static("[dim]escape closes[/]", id="help-close")

    def action_close(self) -> None:
        self.dismiss(None)
