"""Plan a run: the one place that decides what a ``voltx run`` will do before it starts.

A plan is the phase, the runs root, the config file, the preset, the overrides and either
the run it resumes or the id of the new run. Everything that starts a run goes through
:func:`plan_run`: ``voltx run`` itself (``voltx.train.runner``), ``voltx run --tmux`` and the
console (``voltx.runs.launch``), the curriculum's phase runs and plugin commands (through
``RunRequest``). Launchers hand the plan to a child process as :meth:`RunPlan.child_argv`, so a
detached run, a curriculum phase and a typed command run on the same rules.

The rules, each written once (here or in the function named):
- runs root: --runs-dir > $VOLTX_RUNS_DIR > ``[paths].runs_dir`` of the config in use (a
  ``paths.runs_dir=`` override included) > ./runs (:func:`voltx.runs.layout.runs_root`);
- config file: --config, else ./training_config.toml, else the shipped curriculum
  (:func:`voltx.config.default_config_file`);
- resume: ``--resume auto|RUN`` picks the run and refuses a live, damaged, finished or
  other-phase run and a preset/overrides that differ from the run's own
  (:func:`voltx.runs.resumable.resume_target`); nothing to resume starts a new run, with a line
  on stderr; ``--run-id`` names a new run, so it never goes with ``--resume``; ``--resume auto``
  with nothing here and a ``[run].mirror`` pulls the newest unfinished run of the phase from
  the mirror first (:func:`voltx.runs.mirror.pull_newest`: a fresh machine continues it);
- overrides: ``KEY=VALUE`` texts as written, or a ``{key: value}`` mapping written as TOML in
  one place (:func:`voltx.config.override_items`).

No torch, no textual: the console imports this.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from voltx.errors import UsageError


@dataclass(frozen=True)
class RunPlan:
    """What a ``voltx run`` will do, resolved before anything is written."""

    phase: str
    """The phase's registered name (the run directory is ``root/phase/<id>``)."""
    root: Path
    """The runs root."""
    config: Path | None = None
    """The config file the command named (--config); None: :attr:`config_file` finds the default."""
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    """``KEY=VALUE`` texts, as run.json and overrides.txt record them."""
    resume_dir: Path | None = None
    """The run this plan continues; None: a new run."""
    run_id: str | None = None
    """The new run's id when a launcher chose it; None: the run generates one."""
    launch: tuple[str, ...] = ()
    """``--nproc-per-node N`` and the other distributed options, as words (:meth:`voltx.train.launcher.Launch.argv`)."""

    @property
    def config_file(self) -> Path | None:
        """The config file a new run reads: --config, else ./training_config.toml, else the
        shipped curriculum (None: built-in defaults only)."""
        from voltx.config import default_config_file

        return self.config or default_config_file()

    @property
    def run_dir(self) -> Path | None:
        """The run directory, when it is known before the run starts."""
        if self.resume_dir is not None:
            return self.resume_dir
        return self.root / self.phase / self.run_id if self.run_id else None

    def command(self, *, progress: str | None = None) -> list[str]:
        """The ``voltx`` arguments that carry the plan out in another process.

        A resume names only the run: it continues with its saved config, preset and overrides.
        The config file is made absolute, since the child may start in another directory."""
        cmd = ["run", self.phase, "--runs-dir", str(self.root)]
        if self.resume_dir is not None:
            cmd += ["--resume", str(self.resume_dir)]
        else:
            if self.run_id:
                cmd += ["--run-id", self.run_id]
            if self.config:
                cmd += ["--config", str(Path(self.config).absolute())]
            if self.preset:
                cmd += ["--preset", self.preset]
        if progress:
            cmd += ["--progress", progress]
        cmd += list(self.launch)
        if self.resume_dir is None:
            cmd += _checked_for_argv(self.overrides)
        return cmd

    def child_argv(self, *, progress: str | None = None) -> list[str]:
        """``python -m voltx run ...``: the child process's full argv, with this interpreter."""
        return [sys.executable, "-m", "voltx", *self.command(progress=progress)]


def _checked_for_argv(overrides: Iterable[str]) -> list[str]:
    """Overrides as command-line words: one that is not KEY=VALUE, or starts with "-", would be
    read as something else (an option) by the child."""
    bad = [o for o in overrides if "=" not in o or o.startswith("-")]
    if bad:
        raise UsageError(f"overrides must be KEY=VALUE (e.g. encoder.lr=3e-4); got {', '.join(map(repr, bad))}.")
    return list(overrides)


def plan_run(
    phase: str,
    *,
    plugins: Any = None,
    config: str | Path | None = None,
    preset: str | None = None,
    overrides: Mapping[str, Any] | Iterable[str] = (),
    runs_dir: str | Path | None = None,
    resume: str | None = None,
    run_id: str | None = None,
) -> RunPlan:
    """Resolve a run request into a :class:`RunPlan` (the rules are in the module docstring).

    ``plugins`` is the plugin set to look ``phase`` up in (an unknown phase is an error that
    lists the installed ones; an alias becomes the registered name). None trusts ``phase`` as a
    registered name: a launcher whose child process loads its own plugins (the console, the
    curriculum) passes None. ``resume`` is ``auto`` or a RUN (directory, id prefix, ``latest``);
    when there is nothing to resume, the plan is a new run and a line on stderr says so."""
    from voltx.config import config_tables, override_items
    from voltx.runs.layout import check_run_id, configured_text, runs_root
    from voltx.runs.mirror import pull_newest
    from voltx.runs.resumable import nothing_to_resume, resume_target

    if run_id is not None:
        check_run_id(run_id)
    if plugins is not None:
        phase = plugins.get("phases", phase).name
    if resume and run_id:
        raise UsageError("--run-id names a new run; --resume continues an existing one: give one of them.")
    overrides = override_items(overrides)
    root = runs_root(runs_dir, config, overrides)
    plan = RunPlan(phase, root, Path(config) if config else None, preset or None, overrides, run_id=run_id)
    if not resume:
        return plan
    # The tables tell a phase key from a global one; only a preset/overrides to compare need them.
    tables = config_tables(plugins) if preset or overrides else set()
    run_dir = resume_target(root, phase, resume, preset=preset, overrides=overrides, tables=tables)
    mirror = configured_text("run.mirror", config, overrides) if run_dir is None and resume == "auto" else None
    if mirror and pull_newest(mirror, root, phase) is not None:  # a fresh machine: the run is on the mirror
        run_dir = resume_target(root, phase, resume, preset=preset, overrides=overrides, tables=tables)
    if run_dir is None:
        print(nothing_to_resume(phase, root, preset, overrides), file=sys.stderr)
        return plan
    return RunPlan(phase, root, resume_dir=run_dir)  # it continues with its own saved config, preset and overrides
