"""A chain of phases run in order as linked runs, gated on their deliverables.

What ``voltx run curriculum`` is (F1 -> F2 -> F3) and what a plugin's pipeline reuses
(``voltx run agentforge``: cognate -> evomerge). Each phase runs as its own ``voltx run <phase>``
process with its own run directory (:mod:`voltx.runs.linked`), planned with the file the chain
was started with and the chain's preset; the parent records its children as ``curriculum_phase``
events (started / finished / preempted / failed, with the run directory and the deliverables
passed) and after each finished phase applies the gate: a missed deliverable stops the chain
(``gate = "stop"``, exit 83, an error alert; not after the last phase), raises a warning alert
(``"warn"``) or is noted (``"continue"``). A stop is forwarded to the running phase (it
checkpoints, exit 75) and the chain exits 75 too; ``voltx run <chain> --resume`` resumes that
phase's run, skips the finished ones and carries on (after a gate stop: with the next phase).
``voltx run <chain> --nproc-per-node N`` runs the chain itself once and each phase as N processes
(:func:`voltx.runs.linked.plan_child` hands them the options; the chain's ``PhaseSpec`` says
``starts_runs=True`` so the launcher does not start N chains).

What a chain hands from one phase to the next is its own: :class:`Chain`'s ``handoff`` returns
the overrides of a phase about to start from the runs finished before it (the curriculum's
``lang_from``, Agent Forge's ``cognate_dir``), and ``prepare`` checks the phases still to start
before the first one does (the curriculum's data preflight).

Public API (:mod:`voltx.public_api`). No torch: it only starts processes and reads run directories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from voltx.errors import EXIT_PREEMPTED, ConfigError, DataError, GateStopped, Preempted, UsageError, VoltxError
from voltx.runs.jsonl import SkippedLines, read_jsonl
from voltx.runs.linked import child_verdicts, plan_child, run_child
from voltx.runs.records import CurriculumPhase, CurriculumStart, Deliverable, parse_event

GATES = ("stop", "warn", "continue")

Handoff = Callable[[str, Mapping[str, Path], Mapping[str, Any]], Mapping[str, object]]
"""(phase about to start, the runs finished before it by phase in order, every phase's settings) -> its extra overrides."""


@dataclass(frozen=True)
class Chain:
    """One chain run: its own phase name (``curriculum``, ``agentforge``), the phases in order, the
    gate, the preset every phase runs with ("" = none) and what it hands over."""

    name: str
    phases: list[str]
    gate: str = "stop"
    preset: str = ""
    handoff: Handoff | None = None
    prepare: Callable[[Mapping[str, Any]], str | None] | None = None
    """Called with the settings of the phases still to start, before the first starts: raises a
    VoltxError on input that cannot work, returns a line to say (or None)."""


class ChildFailed(VoltxError):
    """A phase of the chain ended with an error; its exit code becomes the chain's."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class History:
    """What a chain run's own events.jsonl says it already did, read through the run store's
    record types: a damaged line is skipped and counted (``skipped``), never taken for a record."""

    phases: dict[str, CurriculumPhase] = field(default_factory=dict)
    """The latest ``curriculum_phase`` record per phase."""
    started_with: str | None = None
    """The config file the chain was first started with ("" = built-in), None if it never started."""
    skipped: SkippedLines = field(default_factory=lambda: SkippedLines("events.jsonl"))


def history(run_dir: Path) -> History:
    """What a resumed chain already did. The run's own writer is live (we hold the lock), so a
    partial last line is left unread, as every reader of a live run leaves it."""
    got = read_jsonl(run_dir / "events.jsonl", parse=parse_event)
    out = History()
    for problem in got.problems:
        out.skipped.add(problem)
    for ev in got.records:
        if isinstance(ev, CurriculumPhase):
            out.phases[ev.phase] = ev
        elif isinstance(ev, CurriculumStart) and out.started_with is None:
            out.started_with = ev.config
    return out


def check_phases(chain: Chain, known: set[str]) -> None:
    key = f"{chain.name}.phases"
    if not chain.phases:
        raise ConfigError(f"{key} is empty; list the phases to run in order, e.g. [\"f1\", \"f2\", \"f3\"]")
    for name in chain.phases:
        if name == chain.name:
            raise ConfigError(f"{key} cannot contain {chain.name!r} itself")
        if name not in known:
            raise ConfigError(f"{key}: no phase {name!r}; installed phases: {', '.join(sorted(known))} (see `voltx phases`)")
    if len(set(chain.phases)) != len(chain.phases):
        raise ConfigError(f"{key} lists a phase twice: {chain.phases}")
    if chain.gate not in GATES:
        raise ConfigError(f"{chain.name}.gate must be one of {', '.join(GATES)}, got {chain.gate!r}")


def phase_settings(config_file: str, chain: Chain) -> dict[str, object]:
    """Each phase's settings as its run will resolve them (the same file and preset)."""
    from voltx.config import default_config_file, load_config, resolve_for_phase

    base = load_config(config_file or default_config_file())
    return {p: resolve_for_phase(base, p, preset=chain.preset or None).phases[p] for p in chain.phases}


def _config_file(ctx, chain: Chain, past: History) -> str:
    """The file the phases read their tables from: the one the chain was started with (a resumed
    chain's own config is its saved copy, which holds only its own table)."""
    if past.started_with is None and past.skipped.count:
        # The start record may be the damaged line: starting over from the saved copy would run every
        # phase on built-in defaults. Refuse instead.
        raise DataError(f"{ctx.run.dir / 'events.jsonl'} has no readable curriculum_start record ({past.skipped.summary()}): "
                        f"cannot tell which config file the phases were started with. Repair that line, or start a new {chain.name}.")
    if past.started_with is not None:
        return past.started_with
    config_file = ctx.config.source if ctx.config.source and Path(ctx.config.source).is_file() else ""
    ctx.run.event("curriculum_start", config=str(Path(config_file).resolve()) if config_file else "", phases=chain.phases)
    return config_file


def run_chain(ctx, chain: Chain) -> dict[str, Path]:
    """Run ``chain`` in the parent run ``ctx``; the run directory of each phase, in order."""
    from voltx.plugins import load_plugins

    if ctx.job is not None:  # started by torch's launcher: N copies of the chain would each start every phase
        raise UsageError(f"phase {chain.name} runs a chain of runs, so it must run as one process: its PhaseSpec needs "
                         f"starts_runs=True, then `voltx run {chain.name} --nproc-per-node N` gives each phase N processes.")
    check_phases(chain, set(load_plugins().specs("phases")))
    root, tag = ctx.run.dir.parents[1], f"[{chain.name}]"
    past = history(ctx.run.dir)
    if past.skipped.count:
        ctx.say(f"{tag} {past.skipped.summary()}; those records are ignored")
    config_file = _config_file(ctx, chain, past)
    ctx.run.update_manifest(total_steps=len(chain.phases), stage=chain.name)
    ctx.say(f"{tag} {' -> '.join(chain.phases)} (preset {chain.preset or 'none'}, gate {chain.gate}); runs under {root}")
    settings = phase_settings(config_file, chain)
    if chain.prepare is not None:
        said = chain.prepare({p: s for p, s in settings.items() if p not in past.phases})  # a started phase reads its run's own config
        if said:
            ctx.say(f"{tag} {said}")
    finished: dict[str, Path] = {}
    for index, phase in enumerate(chain.phases):
        if ctx.stop.requested:  # the stop came as a phase was finishing: do not start the next one
            ctx.run.event("preempted", signal=ctx.stop.signal_name, step=ctx.global_step, stage=chain.name)
            raise Preempted(f"stopped by {ctx.stop.signal_name} before phase {phase}; resume the {chain.name} with "
                            f"`voltx run {chain.name} --resume {ctx.run.dir}`")
        before = past.phases.get(phase)
        if before is not None and before.status == "finished":
            child = Path(before.run_dir)
            ctx.say(f"{tag} {phase}: already finished in {child}")
        else:
            resume = Path(before.run_dir) if before is not None and Path(before.run_dir).exists() else None
            if resume is not None:
                plan = plan_child(ctx, phase, resume=resume)
            else:
                overrides = chain.handoff(phase, dict(finished), settings) if chain.handoff is not None else {}
                plan = plan_child(ctx, phase, config=config_file or None, preset=chain.preset or None, overrides=overrides)
            child = _run_phase(ctx, chain, index, phase, plan, resumed=resume is not None)
        finished[phase] = child
        ctx.global_step = index + 1
        ctx.hub.log({"step": ctx.global_step, "stage": chain.name, "losses": {}, "phases_done": float(index + 1)})
    ctx.say(f"{tag} done: {', '.join(chain.phases)}")
    return finished


def _run_phase(ctx, chain: Chain, index: int, phase: str, plan, resumed: bool) -> Path:
    """Start (or resume) one phase's run, record it, then judge it at the gate; its run directory."""
    child, argv, tag = plan.run_dir, plan.child_argv(progress="plain"), f"[{chain.name}]"
    ctx.run.event("curriculum_phase", phase=phase, status="started", run_dir=str(child), step=index, resumed=resumed, argv=argv[2:])
    ctx.say(f"{tag} {phase}: {'resuming' if resumed else 'starting'} run {child}")
    code = run_child(ctx, phase, argv)
    again = f"`voltx run {chain.name} --resume {ctx.run.dir}`"
    if code == EXIT_PREEMPTED:
        ctx.run.event("curriculum_phase", phase=phase, status="preempted", run_dir=str(child), step=index)
        raise Preempted(f"stopped during phase {phase} (its run {child} checkpointed); resume the {chain.name} with {again}")
    if code != 0:
        ctx.run.event("curriculum_phase", phase=phase, status="failed", run_dir=str(child), step=index, exit_code=code)
        raise ChildFailed(f"phase {phase} failed with exit code {code}; its log is {child / 'stdout.log'}. "
                          f"Fix the cause, then {again} resumes it.", code)
    verdicts = child_verdicts(child)
    missed = [v for v in verdicts if not v.passed]
    ctx.run.event("curriculum_phase", phase=phase, status="finished", run_dir=str(child), step=index,
                  passed=len(verdicts) - len(missed), total=len(verdicts), missed=[v.metric for v in missed])
    ctx.record_evaluation(chain.name, index + 1, index + 1, {f"{phase}/{v.metric}": v.value for v in verdicts if v.value is not None})
    gate(ctx, chain, phase, child, verdicts, missed, last=index == len(chain.phases) - 1)
    return child


def gate(ctx, chain: Chain, phase: str, child: Path, verdicts: list[Deliverable], missed: list[Deliverable], last: bool) -> None:
    """The chain's rule after a finished phase (module docstring)."""
    tag = f"[{chain.name}]"
    summary = f"{len(verdicts) - len(missed)}/{len(verdicts)} deliverables passed"
    if not missed:
        ctx.say(f"{tag} {phase}: {summary}")
        return
    names = ", ".join(f"{v.metric} = {'n/a' if v.value is None else round(v.value, 4)} (target {v.op} "
                      f"{'n/a' if v.threshold is None else format(v.threshold, 'g')})" for v in missed)
    message = f"phase {phase} missed {len(missed)} deliverable(s): {names}"
    if chain.gate == "stop" and not last:
        ctx.run.event("alert", step=ctx.global_step, rule="deliverable-gate", severity="error", message=message)
        raise GateStopped(f"{message}. The {chain.name} stopped before the next phase ({chain.name}.gate = \"stop\"); "
                          f"run {child} has the details (`voltx report {child}`). Set {chain.name}.gate = \"warn\" to go on anyway.")
    if chain.gate == "warn" or (chain.gate == "stop" and last):
        ctx.run.event("alert", step=ctx.global_step, rule="deliverable-gate", severity="warning", message=message)
        ctx.say(f"{tag} warning: {message}")
    else:
        ctx.say(f"{tag} {phase}: {summary} (gate = continue)")
