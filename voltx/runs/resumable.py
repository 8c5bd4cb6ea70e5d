"""Which run ``--resume`` continues, and whether the command that asks matches it.

A preempted job re-runs its exact command plus ``--resume auto`` (DESIGN §7): the run's
own preset and overrides are accepted, different ones are refused with the difference;
``--resume`` without a preset or overrides continues the run with its saved config.
Applied by the run planner (:mod:`voltx.runs.plan`), so ``voltx run``, ``--tmux``, the console and
the curriculum resume on the same rules. No torch.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Iterable

from voltx.errors import RunLockedError, UsageError
from voltx.runs.layout import RunPaths, list_run_dirs, load_manifest, resolve_run
from voltx.runs.lock import lock_holder, writer_alive
from voltx.runs.records import Manifest
from voltx.runs.store import effective_status

RESUMABLE = {"preempted", "failed", "stale", "diverged", "interrupted"}


def find_resumable(root: Path, phase: str) -> Path | None:
    """The newest run of ``phase`` under ``root`` when it can be resumed, else None.

    A newest run whose writer is alive is an error (exit 81): a second ``--resume auto``
    started while the first one holds the run must neither take it over nor start a new run.
    A newest run whose run.json is damaged is refused (exit 65, naming the field), never
    passed over for a new run."""
    runs = [r for r in list_run_dirs(root) if r.parent.name == phase]
    if not runs:
        return None
    newest = runs[-1]
    read = load_manifest(newest)
    status = effective_status(newest, read)
    if status == "running" or (read.damaged and writer_alive(newest)):
        raise RunLockedError(
            f"the latest {phase} run {newest} is being written by another process ({lock_holder(newest)}); "
            "--resume auto does not start a second writer. Watch it with "
            f"`voltx logs -f {newest.name}`, or stop that process (SIGTERM) and resume again."
        )
    read.intact(newest, "resume it")
    return newest if status in RESUMABLE else None


def saved_overrides(run_dir: Path, manifest: Manifest) -> list[str]:
    """The overrides a run was started with (run.json; overrides.txt for runs from before it kept them)."""
    if manifest.overrides is not None:
        return manifest.overrides
    try:
        return [line for line in RunPaths(run_dir).overrides.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        return []


def _by_key(overrides: Iterable[str], phase: str, tables: set[str]) -> dict[str, tuple[str, Any]]:
    """{full dotted key: (value as written, parsed value)}; ``lr=`` and ``<phase>.lr=`` are one key."""
    from voltx.config import parse_override

    out: dict[str, tuple[str, Any]] = {}
    for item in overrides:
        key, value = parse_override(item)
        if key.split(".")[0] not in tables:
            key = f"{phase}.{key}"
        out[key] = (item.partition("=")[2].strip(), value)  # the last one of a key wins, as in a run
    return out


def command_differences(run_dir: Path, manifest: Manifest, phase: str, preset: str | None, overrides: Iterable[str], tables: set[str]) -> list[str]:
    """How a command's preset and overrides differ from the run's saved ones (empty: the same)."""
    diffs = []
    saved_preset = manifest.preset
    if (preset or None) != (saved_preset or None):
        diffs.append(f"preset: the run has {saved_preset or 'none'}, this command {preset or 'none'}")
    ran, asked = _by_key(saved_overrides(run_dir, manifest), phase, tables), _by_key(overrides, phase, tables)
    for key in sorted(ran.keys() | asked.keys()):
        if key not in asked:
            diffs.append(f"{key}: the run has {ran[key][0]}, this command does not set it")
        elif key not in ran:
            diffs.append(f"{key}: this command sets {asked[key][0]}, the run did not")
        elif ran[key][1] != asked[key][1] or type(ran[key][1]) is not type(asked[key][1]):
            diffs.append(f"{key}: the run has {ran[key][0]}, this command {asked[key][0]}")
    return diffs


def nothing_to_resume(phase: str, root: Path, preset: str | None, overrides: Iterable[str]) -> str:
    """What ``--resume`` says when it starts a new run instead: with the command's own settings."""
    asked = " ".join([*([f"--preset {preset}"] if preset else []), *overrides]) or "the phase's config"
    return f"voltx: nothing to resume for phase {phase!r} under {root}; starting a new run ({asked})"


def resume_target(root: Path, phase: str, resume: str, *, preset: str | None, overrides: Iterable[str], tables: set[str]) -> Path | None:
    """The run directory ``--resume auto|RUN`` continues (None: nothing to resume, start a new run).

    Refuses a run of another phase, a finished run, and a command whose preset or overrides
    differ from the run's (a re-run of the run's own command is accepted)."""
    overrides = list(overrides)
    run_dir = find_resumable(root, phase) if resume == "auto" else resolve_run(resume, root, phase)
    if run_dir is None:
        return None
    read = load_manifest(run_dir)
    manifest = read.intact(run_dir, "resume it")
    if manifest.phase != phase and not read.newer:  # a newer format: RunWriter.resume says so
        raise UsageError(f"run {run_dir} is a {manifest.phase!r} run, not {phase!r}.")
    if effective_status(run_dir, read) == "finished":
        raise UsageError(f"run {run_dir} already finished; start a new one without --resume.")
    if preset or overrides:
        diffs = command_differences(run_dir, manifest, phase, preset, overrides, tables)
        if diffs:
            started = f"\n  the run was started with: {shlex.join(manifest.argv)}" if manifest.argv else ""
            raise UsageError(
                f"--resume {resume}: this command's preset/overrides differ from those of run {run_dir}:\n  "
                + "\n  ".join(diffs) + started
                + "\nRe-run the run's own command, give --resume without a preset or overrides to continue it "
                "with its saved config, or drop --resume to start a new run with these settings."
            )
    return run_dir
