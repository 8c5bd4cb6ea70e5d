"""``voltx run curriculum``: the foundation phases F1 -> F2 -> F3 as linked runs.

Each phase runs as its own ``voltx run <phase>`` process with its own run directory
(so the console, ``voltx status`` and ``--resume`` treat it like any other run); the
curriculum run records which child runs belong to it (``curriculum_phase`` events),
hands each phase the previous one's language stack (``<phase>.lang_from = <run dir>``)
and applies the gate after each phase: a missed deliverable stops the curriculum
(``gate = "stop"``, exit 83), raises a warning alert (``"warn"``) or is noted
(``"continue"``). The plan's language-first order is the default.

Stopping (SIGTERM/SIGUSR1, or the console's stop) is forwarded to the running phase,
which checkpoints and exits 75; ``voltx run curriculum --resume auto`` then resumes that
phase's run and carries on with the rest. Import-light (no torch): it only starts
processes and reads their run directories.

The run is :mod:`voltx_phases.curriculum_train` (it starts processes; it trains nothing itself),
imported only when the phase runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from voltx import hookimpl
from voltx.plugin_specs import PhaseSpec


@dataclass
class CurriculumConfig:
    """The ``[curriculum]`` table."""

    phases: list[str] = field(default_factory=lambda: ["f1", "f2", "f3"])
    """Phases run in order as linked runs; each starts from the previous one's artifacts."""
    gate: Literal["stop", "warn", "continue"] = "stop"
    """When a phase misses a deliverable: stop the curriculum, warn and go on, or go on silently."""
    preset: str = ""
    """Preset every phase runs with (`voltx run curriculum --preset quick` sets it); empty = none."""


PHASE = PhaseSpec(
    name="curriculum",
    summary="F1 -> F2 -> F3 as linked runs, each from the previous one's artifacts, gated on deliverables",
    runner="voltx_phases.curriculum_train:run",
    config_class=CurriculumConfig,
    starts_runs=True,
)


@hookimpl
def register_phases(register):
    register(PHASE)
