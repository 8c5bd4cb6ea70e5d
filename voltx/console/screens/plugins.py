"""The Plugins screen: what is loaded per kind, from which plugin, and what failed to load.

It shows the same data as ``voltx plugins`` (the cached :func:`voltx.plugins.load_plugins`
set: its registry, plugin infos and failures), so the console and the CLI never disagree
about what is installed.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

KIND_TITLES = {
    "phases": "phase",
    "converters": "converter",
    "strands": "strand",
    "sinks": "sink",
    "alert_rules": "alert rule",
    "commands": "command",
    "record_formats": "record format",
}
"""Every kind a plugin can register (voltx.plugin_specs.SPEC_KINDS), in the order shown."""


def spec_summary(spec: Any) -> str:
    """One line about a registered spec: most kinds have ``summary``; commands have ``help``."""
    text = getattr(spec, "summary", None) or getattr(spec, "help", None) or ""
    aliases = getattr(spec, "aliases", ())
    if aliases:
        text += f" (aliases: {', '.join(aliases)})"
    return text


class PluginsScreen(Screen):
    """Loaded plugins per kind, each plugin's status, and load failures with their errors."""

    CSS_PATH = "plugins.tcss"
    HELP_TITLE = TITLE = "Plugins"
    BINDINGS = [Binding("escape", "back", "Back"), Binding("question_mark", "help", "Help")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="plugins-body"):
            yield Static(id="plugins-summary")
            yield Static("Registered, per kind", classes="section")
            yield DataTable(id="plugins-registry", cursor_type="row", zebra_stripes=True)
            yield Static("Plugins", classes="section")
            yield DataTable(id="plugins-list", cursor_type="row", zebra_stripes=True)
            yield Static("Load failures", classes="section", id="plugins-failures-title")
            yield DataTable(id="plugins-failures", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        from voltx.plugins import load_plugins

        self.show(load_plugins())

    def show(self, ps) -> None:
        """Fill the tables from a :class:`voltx.plugins.PluginSet`; what plugins wrote (summaries, errors)
        is shown as text: a DataTable reads a plain string as markup, which eats ``[label]``."""
        registry = self.query_one("#plugins-registry", DataTable)
        registry.clear(columns=True)
        registry.add_columns("kind", "name", "plugin", "summary")
        counts = []
        for kind, title in KIND_TITLES.items():
            specs = ps.specs(kind)
            counts.append(f"{len(specs)} {title}{'s' if len(specs) != 1 else ''}")
            for name, spec in specs.items():
                registry.add_row(title, name, ps.provider(kind, name), Text(spec_summary(spec)), key=f"{kind}:{name}")

        plugins = self.query_one("#plugins-list", DataTable)
        plugins.clear(columns=True)
        plugins.add_columns("plugin", "distribution", "version", "built-in", "status", "provides")
        for info in sorted(ps.plugins.values(), key=lambda i: (not i.builtin, i.name)):
            provides = "; ".join(f"{KIND_TITLES.get(k, k)}: {', '.join(v)}" for k, v in info.provides.items()) or "-"
            plugins.add_row(info.name, info.distribution, info.version, "yes" if info.builtin else "no", info.status, Text(provides),
                            key=info.name)

        failures = self.query_one("#plugins-failures", DataTable)
        failures.clear(columns=True)
        failures.add_columns("plugin", "distribution", "stage", "error")
        for n, f in enumerate(ps.failures):
            failures.add_row(f.plugin, f.distribution, f.stage, Text(f.error), key=str(n))  # "[label]", "[Errno 2]": text, not markup
        failures.display = bool(ps.failures)
        title = self.query_one("#plugins-failures-title", Static)
        title.update(f"Load failures ({len(ps.failures)})" if ps.failures else "Load failures: none")

        summary = f"{len(ps.plugins)} plugins: " + ", ".join(counts)
        if ps.failures:
            names = sorted({f.plugin for f in ps.failures})
            summary += f"\n[b red]{len(names)} plugin(s) failed to load: {', '.join(names)}[/] (errors below)"
        self.query_one("#plugins-summary", Static).update(summary)

    def action_back(self) -> None:
        self.dismiss()

    def action_help(self) -> None:
        from voltx.console.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))
