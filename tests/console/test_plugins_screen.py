"""The Plugins screen lists what `voltx plugins` lists, per kind, and shows load failures."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from textual.app import App
from textual.widgets import DataTable, Static

from voltx.console.screens.plugins import PluginsScreen

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
sys.path.insert(0, str(ROOT_CONFTEST.parent / "plugins"))
from plugin_support import fake_plugin_dist  # noqa: E402  (the root conftest's helper, loaded by path)

BROKEN = 'raise RuntimeError("boom [/from] [plugin]")\n'  # brackets: text, not markup (a crash, or eaten)
GOOD = '''\
from voltx import hookimpl
from voltx.plugin_specs import SinkSpec


@hookimpl
def register_sinks(register):
    register(SinkSpec("screen_sink", "a sink only this test installs", "voltx_screen_sink:make"))
'''


class Host(App):
    def on_mount(self) -> None:
        self.push_screen(PluginsScreen())


def cells(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_lists_builtins_per_kind_and_a_third_party_plugin(tmp_path, monkeypatch):
    site = fake_plugin_dist(tmp_path / "site", "voltx-screen-sink", "voltx_screen_sink", GOOD)
    monkeypatch.syspath_prepend(str(site))
    asyncio.run(_lists_builtins())


async def _lists_builtins():
    async with Host().run_test(size=(160, 48)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, PluginsScreen)
        registry = cells(screen.query_one("#plugins-registry", DataTable))
        assert ["phase", "translator", "translator"] == registry[[r[1] for r in registry].index("translator")][:3]
        assert ["sink", "screen_sink", "voltx_screen_sink", "a sink only this test installs"] in registry
        plugins = {r[0]: r for r in cells(screen.query_one("#plugins-list", DataTable))}
        assert plugins["voltx_screen_sink"][1:5] == ["voltx-screen-sink", "0.1", "no", "loaded"]
        assert plugins["translator"][3] == "yes"
        assert not screen.query_one("#plugins-failures", DataTable).display
        assert "none" in str(screen.query_one("#plugins-failures-title", Static).render())


def test_a_plugin_that_fails_to_import_is_shown_with_its_error(tmp_path, monkeypatch):
    site = fake_plugin_dist(tmp_path / "site", "voltx-broken", "voltx_broken", BROKEN, entry_name="broken")
    monkeypatch.syspath_prepend(str(site))
    asyncio.run(_shows_failure())


async def _shows_failure():
    async with Host().run_test(size=(160, 48)) as pilot:
        screen = pilot.app.screen
        failures = cells(screen.query_one("#plugins-failures", DataTable))
        assert failures == [["broken", "voltx-broken", "import", "RuntimeError: boom [/from] [plugin]"]]
        assert screen.query_one("#plugins-failures", DataTable).display
        await pilot.pause(0.05)  # drawn: a cell read as markup would have raised MarkupError
        summary = str(screen.query_one("#plugins-summary", Static).render())
        assert "1 plugin(s) failed to load: broken" in summary
        plugins = {r[0]: r for r in cells(screen.query_one("#plugins-list", DataTable))}
        assert plugins["broken"][4] == "failed"
        # The built-ins still load and are listed beside the failure.
        assert "translator" in plugins
        await pilot.press("escape")
        assert not isinstance(pilot.app.screen, PluginsScreen)


def test_p_on_the_runs_screen_opens_it(tmp_path):
    from voltx.console.app import VoltxConsole

    async def body():
        app = VoltxConsole([tmp_path / "runs"], poll_s=30)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("P")
            await pilot.pause()
            assert isinstance(app.screen, PluginsScreen)
            assert app.screen.query_one("#plugins-registry", DataTable).row_count > 0

    asyncio.run(body())
