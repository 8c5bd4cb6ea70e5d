"""Hand a thread worker's result to the UI thread, unless its screen is gone by then.

A scan or a read runs in a thread worker and finishes whenever the disk lets it; by then
the user may have quit the console or closed the screen, and textual is pruning its
widgets. Calling the screen's ``show`` then raises ``NoMatches`` from inside textual's
shutdown (a traceback on quit, and a crashed app). Every worker hands over through
:func:`to_ui`, which checks on the UI thread, at the moment of delivery, that the screen is
still up.
"""

from __future__ import annotations

from typing import Any, Callable

from textual.screen import Screen


def screen_is_up(screen: Screen) -> bool:
    """The app runs and the screen is in the DOM and not being closed or pruned."""
    # ``display`` is False while a node closes or is pruned (textual's own test for it).
    return screen.app.is_running and screen.is_attached and screen.display


def to_ui(screen: Screen, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """From a worker thread: run ``fn(*args, **kwargs)`` on the UI thread if ``screen`` is still up."""

    def deliver() -> None:
        if screen_is_up(screen):
            fn(*args, **kwargs)

    screen.app.call_from_thread(deliver)
