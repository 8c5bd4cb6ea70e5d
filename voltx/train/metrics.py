"""Fan-out of logged steps: the run store (which feeds the sinks), plugin hooks, alert rules."""

from __future__ import annotations

from typing import Any, Callable

from voltx.plugins import PluginSet
from voltx.runs.store import RunWriter
from voltx.plugin_specs import resolve


class MetricsHub:
    def __init__(self, run: RunWriter, plugins: PluginSet, alert_rules: list[str], say: Callable[[str], None]):
        self.run = run
        self.plugins = plugins
        self._say = say
        self.rules = []
        for name in alert_rules:
            spec = plugins.get("alert_rules", name)
            self.rules.append((spec, resolve(spec.factory)(run.dir)))
        self._hook = plugins.pm.hook.on_step_logged
        self._has_hooks = bool(self._hook.get_hookimpls())

    def log(self, record: dict[str, Any]) -> None:
        self.run.log_metrics(record)
        if self._has_hooks:
            self._hook(run=self.run, record=record)
        for spec, rule in self.rules:
            message = rule.check(record)
            if message:
                self.run.event("alert", rule=spec.name, severity=spec.severity, step=record.get("step"), message=message)
                self._say(f"ALERT [{spec.name}] step {record.get('step')}: {message}")
