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


def help_extra(screen: Screen) -> list[tuple[str, str, tuple[str, ...]]]:
    """A screen's HELP_EXTRA rows: (key as shown, what it does, the binding keys it stands for).
    A row that stands for bindings replaces them (``1-8`` for the eight tab keys); a row that
    stands for none adds a key the bindings do not list (a mouse click, a widget's key)."""
    return [(row[0], row[1], tuple(row[2]) if len(row) > 2 else ()) for row in getattr(screen, "HELP_EXTRA", [])]


def bindings_table(screen: Screen) -> Table:
    """One row per key, each key once: the screen's enabled bindings in order (a HELP_EXTRA row
    in place of the bindings it stands for), then its other HELP_EXTRA rows, then the global keys."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("action")
    extras = help_extra(screen)
    stands_for = {raw: (key, what) for key, what, raws in extras for raw in raws}
    seen = set()

    def add(key: str, what: str) -> None:
        if key not in seen:
            seen.add(key)
            table.add_row(key, what)

    for b in getattr(screen, "BINDINGS", []):
        enabled = screen.check_action(b.action.split("(")[0], ()) if isinstance(b, Binding) else False
        if not isinstance(b, Binding) or not b.description or enabled is False:
            continue
        raws = [k.strip() for k in b.key.split(",")]
        add(*next((stands_for[r] for r in raws if r in stands_for), (key_display(b.key), b.description)))
    for key, what, raws in extras:
        if not raws:
            add(key, what)
    for key, what in GLOBAL:
        add(key, what)
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
