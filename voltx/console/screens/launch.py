"""The Launch dialog: pick a phase and a preset, edit overrides, choose tmux; validate, then
hand a :class:`LaunchRequest` back to whoever pushed it (the app starts the process).

It opens on the phase and preset launched last (:mod:`voltx.console.state`), or on the
README's first run, never silently on the full recipe of whichever phase sorts first. The
tmux switch's label says "on"/"off" in words: its colour alone is lost on a monochrome
terminal or under NO_COLOR.

Validation is the config machinery ``voltx run`` itself uses (:func:`voltx.config.
resolve_for_phase` against the phases' config classes), so an override the run would
reject never leaves the dialog: the message names the key and the closest valid one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, Switch, TextArea

from voltx.console.state import FIRST_RUN, last_launch
from voltx.errors import VoltxError


@dataclass(frozen=True)
class LaunchRequest:
    """What the user asked to start; ``voltx.runs.launch.launch_run`` takes these fields."""

    phase: str
    preset: str | None
    overrides: tuple[str, ...]
    use_tmux: bool
    config_path: Path | None = None
    """The config file the dialog validated against (None: the default ``voltx run`` uses)."""
    nproc_per_node: int = 1
    """``voltx run --nproc-per-node``: processes on this machine (one per GPU, or CPU processes with gloo)."""


def override_lines(text: str) -> tuple[str, ...]:
    """One override per non-blank line; ``#`` starts a comment line."""
    return tuple(s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#"))


class LaunchScreen(ModalScreen["LaunchRequest | None"]):
    """Dismisses with a validated :class:`LaunchRequest`, or None when cancelled."""

    CSS_PATH = "launch.tcss"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "launch", "Launch")]

    def __init__(self, runs_root: Path | None = None, *, config_path: Path | None = None) -> None:
        super().__init__()
        self.runs_root = runs_root
        self.config_path = Path(config_path) if config_path else None
        self._summaries: dict[str, str] = {}
        self._config = None
        self._config_error: str | None = None
        self._presets_of: str | None = None  # the phase whose presets the preset list holds
        self._tmux = False

    def compose(self) -> ComposeResult:
        from voltx.runs.launch import tmux_available

        self._load_choices()
        tmux = self._tmux = tmux_available()
        phases = [(f"{name} — {summary}" if summary else name, name) for name, summary in self._summaries.items()]
        with VerticalScroll(id="launch-dialog"):
            yield Label("[b]Launch a run[/]" + (f" into {self.runs_root}" if self.runs_root else ""), id="launch-title")
            yield Label("Phase")
            yield Select(phases, id="launch-phase", allow_blank=False, prompt="phase", compact=True) if phases else Static(
                "[red]No phases are installed (see the Plugins screen).[/]", id="launch-phase-missing"
            )
            yield Label("Preset")
            yield Select([], id="launch-preset", prompt="(no preset)", allow_blank=True, compact=True)
            yield Label("Overrides, one KEY=VALUE per line (e.g. encoder.lr=3e-4, hardware.device=cpu)")
            yield TextArea(id="launch-overrides", soft_wrap=False)
            yield Label("Processes on this machine (--nproc-per-node: one per GPU, or CPU processes with gloo when hardware.device=cpu)")
            yield Input("1", type="integer", id="launch-nproc", compact=True)
            with Horizontal(id="launch-tmux-row"):
                yield Switch(value=tmux, disabled=not tmux, id="launch-tmux")
                yield Label(self._tmux_text(tmux), id="launch-tmux-label")
            yield Static(id="launch-error")
            with Horizontal(id="launch-buttons"):
                yield Button("Launch", variant="primary", id="launch-go", disabled=not phases)
                yield Button("Cancel", id="launch-cancel")

    def _load_choices(self) -> None:
        """Phases from the plugin set, presets from the config file ``voltx run`` would read."""
        from voltx.config import build_config, default_config_file, load_config
        from voltx.plugins import load_plugins

        specs = load_plugins().specs("phases")
        self._summaries = {name: spec.summary for name, spec in specs.items()}
        path = self.config_path or default_config_file()
        try:
            self._config = load_config(path) if path else build_config({})  # the installed phases' tables
            self.config_path = Path(path) if path else None
        except VoltxError as exc:
            self._config_error = str(exc)

    def _tmux_text(self, on: bool) -> str:
        if not self._tmux:
            return "tmux: OFF, tmux is not installed: the run starts detached, output in the run directory"
        if on:
            return "tmux: ON, the run starts inside tmux session voltx-<run-id> (attach to watch it)"
        return "tmux: OFF, the run starts detached, output in the run directory"

    def on_switch_changed(self, event: Switch.Changed) -> None:
        if event.switch.id == "launch-tmux":
            self.query_one("#launch-tmux-label", Label).update(self._tmux_text(event.value))

    def on_mount(self) -> None:
        if self._config_error:
            self.show_error(self._config_error)
        if self._summaries:
            self._select_initial()
            self.query_one("#launch-phase", Select).focus()  # else the first key goes to the scroll container

    def _select_initial(self) -> None:
        """The last launched phase and preset when they still exist, else the README's first run,
        else the first phase without a preset."""
        phase_select = self.query_one("#launch-phase", Select)
        for choice in (last_launch(), FIRST_RUN):
            if choice is not None and choice.phase in self._summaries:
                phase_select.value = choice.phase
                self._fill_presets(choice.phase)
                if choice.preset in self._presets():
                    self.query_one("#launch-preset", Select).value = choice.preset
                return
        self._fill_presets(phase_select.value)

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "launch-phase" or event.value is Select.NULL or event.value != event.select.value:
            return  # a stale event (the mount-time default arriving after the initial choice was set)
        if event.value != self._presets_of:  # not when it only echoes the initial choice: that would drop its preset
            self._fill_presets(event.value)
            self.show_error(self._config_error or "")  # an override error may not hold for another phase

    def _presets(self, phase: str | None = None) -> list[str]:
        return sorted(self._config.presets.get(phase or self._presets_of, {})) if self._config else []

    def _fill_presets(self, phase: str) -> None:
        self._presets_of = phase
        self.query_one("#launch-preset", Select).set_options([(p, p) for p in self._presets(phase)])

    def show_error(self, message: str) -> None:
        box = self.query_one("#launch-error", Static)
        box.update(escape(message))  # messages name tables as [codebook]: text, not markup
        box.display = bool(message)

    def checked_request(self) -> LaunchRequest | None:
        """The request if the config machinery accepts it; else None with the error shown."""
        from voltx.config import resolve_for_phase

        if self._config is None:
            self.show_error(self._config_error or "no config loaded")
            return None
        phase = self.query_one("#launch-phase", Select).value
        preset_value = self.query_one("#launch-preset", Select).value
        preset = None if preset_value is Select.NULL else str(preset_value)
        overrides = override_lines(self.query_one("#launch-overrides", TextArea).text)
        try:
            resolve_for_phase(self._config, phase, preset=preset, overrides=list(overrides))
        except VoltxError as exc:
            self.show_error(str(exc))
            return None
        nproc = self.query_one("#launch-nproc", Input).value.strip()
        if not nproc.isdigit() or int(nproc) < 1:
            self.show_error(f"processes on this machine: {nproc!r} is not a whole number of at least 1.")
            return None
        self.show_error("")
        use_tmux = self.query_one("#launch-tmux", Switch).value
        return LaunchRequest(phase, preset, overrides, use_tmux, self.config_path, int(nproc))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch-go":
            self.action_launch()
        elif event.button.id == "launch-cancel":
            self.action_cancel()

    def action_launch(self) -> None:
        if not self._summaries:
            return
        request = self.checked_request()
        if request is not None:
            self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
