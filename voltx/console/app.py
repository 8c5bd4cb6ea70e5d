"""``voltx-console``: the Textual dashboard over the run store.

It reads run directories and launches runs as separate processes (voltx.runs.launch),
so quitting it never stops a run. Screens: runs (the start screen), run detail, help,
system, plugins, compare, launch. ``VoltxConsole(roots, run=..., read_only=...)`` is also
what ``voltx attach`` drives. Importing this module must not import torch (a subprocess
test checks it): the backend is imported inside the actions that need it.

Keys on every screen: ``?`` help, ``q`` quit (``ctrl+c`` too). Below ``MIN_SIZE`` the
console shows an "enlarge to at least WxH" state instead of a broken layout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from voltx.console.widgets.dialogs import TooSmallScreen

MIN_SIZE = (60, 16)


class VoltxConsole(App):
    """``roots``: run store roots (the first is where launches go). ``run``: open this run's
    detail on top of the runs screen; with ``read_only`` it is the only screen (``voltx attach``)."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "voltx-console"
    BINDINGS = [Binding("q", "quit", "Quit", show=False)]
    ENABLE_COMMAND_PALETTE = True

    def __init__(self, roots: list[Path], *, run: Path | None = None, read_only: bool = False, poll_s: float = 1.0):
        super().__init__()
        self.roots = [Path(r) for r in roots]
        self.run_dir = Path(run) if run else None
        self.read_only = read_only
        self.poll_s = poll_s
        self._too_small: TooSmallScreen | None = None
        self._started = False  # the first Resize comes before on_mount has pushed any screen

    def on_mount(self) -> None:
        from voltx.console.screens.run_detail import RunDetailScreen

        if not self.read_only:
            from voltx.console.screens.runs import RunsScreen

            self.push_screen(RunsScreen(self.roots, poll_s=self.poll_s))
        if self.run_dir is not None:
            self.push_screen(RunDetailScreen(self.run_dir, read_only=self.read_only, poll_s=min(0.5, self.poll_s)))
        self._started = True
        self.check_size()

    def on_resize(self, event) -> None:
        self.check_size(event.size)  # self.size is only updated after this handler

    def check_size(self, size=None) -> None:
        """Show or drop the too-small state for the terminal size."""
        if not self._started:
            return
        w, h = size or self.size
        small = w < MIN_SIZE[0] or h < MIN_SIZE[1]
        if small and self._too_small is None:
            self._too_small = TooSmallScreen(*MIN_SIZE, size=(w, h))
            self.push_screen(self._too_small)
        elif small and self._too_small is not None and self._too_small.is_mounted:
            self._too_small.update_size((w, h))
        elif not small and self._too_small is not None:
            if self.screen is self._too_small:
                self.pop_screen()
            self._too_small = None


def build_parser() -> argparse.ArgumentParser:
    from voltx.runs.layout import RUNS_DIR_PRECEDENCE

    p = argparse.ArgumentParser(prog="voltx-console", description="Textual dashboard over the voltx run store: watch, launch, stop, resume, compare runs.")
    p.add_argument("--runs-dir", action="append", metavar="DIR", default=[],
                   help=f"a run store root (repeatable; the first is where launches go; {RUNS_DIR_PRECEDENCE})")
    p.add_argument("--run", metavar="RUN", help="open this run's detail (directory, id prefix, or latest; default: the runs list)")
    return p


def main(argv: list[str] | None = None) -> int:
    from voltx.errors import VoltxError
    from voltx.runs.layout import resolve_run, runs_root

    args = build_parser().parse_args(argv)
    default = runs_root()
    roots = [Path(r).expanduser() for r in args.runs_dir] or [default]
    run = None
    if args.run:
        try:
            run = resolve_run(args.run, roots[0])
        except VoltxError as exc:
            print(f"voltx-console: error: {exc}", file=sys.stderr)
            return exc.exit_code
    VoltxConsole(roots, run=run).run()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
