"""The Launch dialog: phases from the plugin set, presets from the config, overrides checked
by the config machinery before anything starts, tmux on when available."""

from __future__ import annotations

import asyncio

import pytest
from textual.app import App
from textual.widgets import Select, Static, Switch, TextArea

import voltx.runs.launch
from voltx.console.screens.launch import LaunchRequest, LaunchScreen, override_lines


class Host(App):
    def __init__(self, screen):
        super().__init__()
        self._first = screen
        self.results: list = []

    def on_mount(self) -> None:
        self.push_screen(self._first, callback=self.results.append)


def drive(screen, check, size=(100, 40)):
    async def body():
        app = Host(screen)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await check(pilot, screen, app.results)

    asyncio.run(body())


async def fill(pilot, screen, phase: str, preset, overrides: str) -> None:
    screen.query_one("#launch-phase", Select).value = phase
    await pilot.pause()
    if preset is not None:
        screen.query_one("#launch-preset", Select).value = preset
    screen.query_one("#launch-overrides", TextArea).text = overrides
    await pilot.pause()


def error_text(screen) -> str:
    box = screen.query_one("#launch-error", Static)
    return str(box.render()) if box.display else ""


def test_valid_choice_dismisses_with_a_launch_request(tmp_path):
    async def check(pilot, screen, results):
        phases = [value for _, value in screen.query_one("#launch-phase", Select)._options]
        assert {"codebook", "translator"} <= set(phases)
        await fill(pilot, screen, "codebook", "quick", "iters=3\n\n# a comment\n run.log_every=1 \n")
        assert screen.query_one("#launch-tmux", Switch).value is voltx.runs.launch.tmux_available()
        await pilot.click("#launch-go")
        await pilot.pause()
        assert results == [LaunchRequest("codebook", "quick", ("iters=3", "run.log_every=1"),
                                         voltx.runs.launch.tmux_available(), screen.config_path)]
        assert screen.config_path is not None and screen.config_path.name.endswith(".toml")

    drive(LaunchScreen(tmp_path / "runs"), check)


def test_presets_follow_the_phase(tmp_path):
    config = tmp_path / "my.toml"
    config.write_text("[codebook.presets.tiny]\nk = 8\n\n[codebook.presets.big]\nk = 4096\n\n[translator.presets.fast]\nmax_examples = 10\n")

    async def check(pilot, screen, results):
        await fill(pilot, screen, "codebook", None, "")
        assert [v for _, v in screen.query_one("#launch-preset", Select)._options if v is not Select.NULL] == ["big", "tiny"]
        await fill(pilot, screen, "translator", None, "")
        assert [v for _, v in screen.query_one("#launch-preset", Select)._options if v is not Select.NULL] == ["fast"]
        await pilot.press("ctrl+s")
        assert results[0].phase == "translator" and results[0].preset is None and results[0].config_path == config

    drive(LaunchScreen(tmp_path, config_path=config), check)


@pytest.mark.parametrize("override, expected", [
    ("iter=3", "unknown key 'codebook.iter' (did you mean 'codebook.iters'?). Valid keys under [codebook]: corpus"),
    ("iters=lots", "codebook.iters expects an integer"),
    ("hardware.devise=cpu", "did you mean 'hardware.device'?"),
    ("iters", "is not key=value"),
])
def test_bad_override_is_an_inline_error_and_nothing_is_launched(tmp_path, override, expected):
    async def check(pilot, screen, results):
        await fill(pilot, screen, "codebook", None, override)
        await pilot.click("#launch-go")
        await pilot.pause()
        assert expected in error_text(screen)
        assert results == [] and pilot.app.screen is screen
        # Fixing it launches.
        screen.query_one("#launch-overrides", TextArea).text = "iters=3"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert results[0].overrides == ("iters=3",)

    drive(LaunchScreen(tmp_path), check)


def test_escape_cancels_with_none(tmp_path):
    async def check(pilot, screen, results):
        await pilot.press("escape")
        assert results == [None]

    drive(LaunchScreen(tmp_path), check)


def test_without_tmux_the_switch_is_off_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(voltx.runs.launch, "tmux_available", lambda: False)

    async def check(pilot, screen, results):
        switch = screen.query_one("#launch-tmux", Switch)
        assert switch.value is False and switch.disabled
        assert "tmux is not installed" in str(screen.query_one("#launch-tmux-label").render())
        await pilot.press("ctrl+s")
        assert results[0].use_tmux is False

    drive(LaunchScreen(tmp_path), check)


def test_a_broken_config_file_is_named_in_the_dialog(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[codebook]\nkk = 3\n")

    async def check(pilot, screen, results):
        assert "bad.toml:2: unknown key 'codebook.kk'" in error_text(screen)
        await pilot.press("ctrl+s")
        assert results == []

    drive(LaunchScreen(tmp_path, config_path=bad), check)


def test_override_lines():
    assert override_lines(" a=1 \n\n#x=2\nb.c = 3\n") == ("a=1", "b.c = 3")


def test_the_phase_select_has_focus_so_enter_opens_it(monkeypatch):
    monkeypatch.setattr(voltx.runs.launch, "tmux_available", lambda: True)

    async def check(pilot, screen, results):
        select = screen.query_one("#launch-phase", Select)
        assert screen.focused is select  # the first key used to go to the scroll container and do nothing
        await pilot.press("enter")
        await pilot.pause()
        assert select.expanded

    drive(LaunchScreen(), check)


def test_processes_per_node_reach_the_request_and_the_command(tmp_path):
    from textual.widgets import Input

    from voltx.runs.plan import RunPlan

    async def check(pilot, screen, results):
        await fill(pilot, screen, "codebook", "quick", "")
        screen.query_one("#launch-nproc", Input).value = "0"
        await pilot.press("ctrl+s")
        assert results == [] and "not a whole number of at least 1" in error_text(screen)
        screen.query_one("#launch-nproc", Input).value = "2"
        await pilot.press("ctrl+s")
        assert results[0].nproc_per_node == 2

    drive(LaunchScreen(tmp_path / "runs"), check)
    plan = RunPlan("codebook", tmp_path / "runs", run_id="x", launch=("--nproc-per-node", "2"))
    assert plan.child_argv()[-2:] == ["--nproc-per-node", "2"]  # what launch_run and --tmux start


def test_every_label_of_the_dialog_is_shown_whole_on_a_120_column_terminal():
    """The dialog is at most 100 columns wide; a longer label (the processes field's) wraps instead of
    being cut at the border, where its end (``hardware.device=cpu)``) was lost."""
    from textual.widgets import Label

    async def check(pilot, screen, results):
        box = screen.query_one("#launch-dialog").content_region
        for label in screen.query(Label):
            assert label.region.right <= box.right, (str(label.render()), label.region, box)

    drive(LaunchScreen(), check, size=(120, 50))
