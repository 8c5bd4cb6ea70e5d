"""Small modal screens: a yes/no confirmation and the terminal-too-small state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    """``y`` / enter confirms, ``n`` / escape cancels; dismisses with the answer."""

    BINDINGS = [Binding("y,enter", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, id="confirm-question")
            yield Static("[b]y[/] yes    [b]n[/] no", id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class TooSmallScreen(ModalScreen[None]):
    """Shown over everything while the terminal is smaller than the console can lay out."""

    BINDINGS = [Binding("q,ctrl+c", "app.quit", "Quit")]

    def __init__(self, min_width: int, min_height: int, size: tuple[int, int]):
        super().__init__()
        self.min_width, self.min_height = min_width, min_height
        self.terminal = size

    def compose(self) -> ComposeResult:
        yield Static(id="too-small-message")

    def on_mount(self) -> None:
        self.update_size(self.terminal)

    def update_size(self, size: tuple[int, int]) -> None:
        self.terminal = size
        w, h = size
        self.query_one("#too-small-message", Static).update(
            f"Terminal is {w}x{h}: enlarge it to at least {self.min_width}x{self.min_height}.  (q quits)"
        )
