"""``voltx run lvm-sweep``: one ``lvm`` run per architecture, as linked runs, ranked.

The LVM handoff's ``experiments.csv`` as runs: each architecture trains as its own ``voltx run
lvm model=<name>`` (its own run directory, curves, verdicts and resume), started by the sweep
run through :mod:`voltx.runs.linked`. The sweep records each child (``linked_run`` events), logs
every child's validation cosine beside its baselines as its own evaluation
(``sweep/<model>/cosine`` ...), and ends with the ranking; the console's compare view ranks the
marked runs the same way. A stop is forwarded to the running child (it checkpoints, exit 75);
``voltx run lvm-sweep --resume auto`` resumes that child and carries on with the rest.

Import-light: the run is :mod:`voltx_lvm.sweep_train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from voltx.plugin_specs import PhaseSpec


@dataclass
class SweepConfig:
    """The ``[lvm-sweep]`` table."""

    PRESETS: ClassVar[dict[str, dict]] = {"quick": {"preset": "quick"}}

    models: list[str] = field(default_factory=lambda: ["lstm", "gru", "transformer", "mamba"])
    """Architectures trained in order, one ``lvm`` run each."""
    preset: str = ""
    """Preset of every lvm run (`voltx run lvm-sweep --preset quick` sets quick); empty = none."""
    overrides: list[str] = field(default_factory=list)
    """KEY=VALUE overrides of the [lvm] table given to every run (e.g. ["data=\\"seq.npz\\"", "epochs=3"])."""


PHASE = PhaseSpec(
    name="lvm-sweep",
    summary="train several lvm architectures as linked runs and rank them by validation cosine",
    runner="voltx_lvm.sweep_train:run",
    config_class=SweepConfig,
    check="voltx_lvm.sweep_train:check",
    starts_runs=True,
)
