"""``?``: every key binding of the screen underneath, read from its BINDINGS (never a stale copy)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

GLOBAL = [("?", "this help"), ("q", "quit"), ("ctrl+p", "command palette")]


def key_display(key: str) -> str:
    """What the user types: ``?`` and ``/``, not Textual's names ``question_mark`` and ``slash``."""
    return " / ".join(format_key(k.strip()) for k in key.split(","))


def bindings_table(screen: Screen) -> Table:
    """One row per key: the screen's bindings (a HELP_EXTRA entry for the same key replaces
    the short footer description), then its other HELP_EXTRA rows, then the global keys."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    extra = dict(getattr(screen, "HELP_EXTRA", []))
    seen = set()
    for b in getattr(screen, "BINDINGS", []):
        enabled = screen.check_action(b.action.split("(")[0], ()) if isinstance(b, Binding) else False
        if not isinstance(b, Binding) or not b.description or enabled is False:
            continue
        key = key_display(b.key)
        if key not in seen:
            seen.add(key)
            table.add_row(key, extra.pop(key, b.description))
    for key, what in extra.items():
        seen.add(key)
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
