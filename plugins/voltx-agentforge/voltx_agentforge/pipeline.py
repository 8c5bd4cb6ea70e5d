"""``voltx run agentforge``: the Agent Forge phases in order (cognate -> evomerge) as linked runs.

The Volt X curriculum's engine (:mod:`voltx.runs.chain`, voltx's public API), with Agent Forge's
hand-over: each phase runs as its own ``voltx run <phase>`` process and run directory, with the
tables of the file the pipeline was started with and its preset; after each phase the gate
judges its deliverables (``stop``: a missed one ends the pipeline with exit 83 before the next
phase; ``warn``: a warning alert, then on; ``continue``), a stop is forwarded to the running
phase and ``voltx run agentforge --resume`` carries on from it. A phase named in
:data:`HANDOFF` is given the ``artifacts/`` directory of the run of the phase it reads from
(``evomerge.cognate_dir`` = the cognate run's ``artifacts/``: ``cognate.json`` and the three
``cognate-<specialisation>/`` model directories, the contract of :mod:`cognate_artifacts`).

Import-light: no torch (it only starts processes and reads their run directories).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

from voltx.errors import ConfigError
from voltx.plugin_specs import PhaseSpec
from voltx.runs.chain import Chain, check_phases, run_chain

HANDOFF: dict[str, tuple[str, str]] = {"evomerge": ("cognate_dir", "cognate")}
"""phase -> (its setting, the earlier phase whose run's ``artifacts/`` it is given)."""


@dataclass
class AgentForgeConfig:
    """The ``[agentforge]`` table."""

    PRESETS: ClassVar[dict[str, dict]] = {"quick": {"preset": "quick", "gate": "warn"}}

    phases: list[str] = field(default_factory=lambda: ["cognate", "evomerge"])
    """Phases run in order as linked runs (Agent Forge's phase 1 then phase 2)."""
    gate: Literal["stop", "warn", "continue"] = "stop"
    """When a phase misses a deliverable: stop before the next phase, warn and go on, or go on silently."""
    preset: str = ""
    """Preset every phase runs with (`voltx run agentforge --preset quick` sets quick, and gate = warn:
    a quick run shows learning and is judged, but a miss does not keep phase 2 from running); empty = none."""


def handoff(phase: str, finished: Mapping[str, Path], settings: Mapping[str, Any]) -> dict[str, object]:
    if phase not in HANDOFF:
        return {}
    key, source = HANDOFF[phase]
    return {key: str(finished[source] / "artifacts")} if source in finished else {}


def check(cfg: AgentForgeConfig) -> None:
    """Before the run directory exists: a pipeline whose hand-over cannot happen is refused
    (a phase before the one it reads from, or an installed phase without the setting it is given)."""
    from voltx.plugins import load_plugins

    specs = load_plugins().specs("phases")
    check_phases(Chain("agentforge", list(cfg.phases), cfg.gate), set(specs))
    for phase, (key, source) in HANDOFF.items():
        if phase not in cfg.phases:
            continue
        if source not in cfg.phases or cfg.phases.index(source) > cfg.phases.index(phase):
            raise ConfigError(f"agentforge.phases {cfg.phases}: {phase} is handed the models of {source}, so {source} must "
                              f"come before it; run `voltx run {phase} {key}=<a {source} run>/artifacts` on its own instead")
        spec = specs.get(phase)
        if spec is not None and key not in {f.name for f in fields(spec.config_class)}:
            raise ConfigError(f"agentforge.phases: the installed phase {phase!r} has no setting {key!r}, through which the "
                              f"pipeline hands it the {source} run's artifacts")


def run(ctx) -> None:
    cfg: AgentForgeConfig = ctx.settings
    run_chain(ctx, Chain("agentforge", list(cfg.phases), cfg.gate, cfg.preset, handoff=handoff))


PHASE = PhaseSpec(
    name="agentforge",
    summary="Agent Forge phases 1 -> 2 (cognate -> evomerge) as linked runs, each from the previous one's models, gated on deliverables",
    runner="voltx_agentforge.pipeline:run",
    config_class=AgentForgeConfig,
    check="voltx_agentforge.pipeline:check",
    starts_runs=True,
)
