"""The run of ``voltx run curriculum`` (:mod:`voltx_phases.curriculum`): start each phase as
its own ``voltx run`` process, record it, forward stop signals, apply the gate."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from voltx.errors import EXIT_PREEMPTED, ConfigError, DataError, GateStopped, Preempted, VoltxError
from voltx.runs.jsonl import SkippedLines, read_jsonl
from voltx.runs.linked import child_verdicts, parent_overrides, run_child
from voltx.runs.records import CurriculumPhase, CurriculumStart, Deliverable, parse_event
from voltx_phases.curriculum import CurriculumConfig
from voltx_phases.curriculum_data import preflight, tokenizer_corpus

STACK_FILE = "lang_encoder.safetensors"


class ChildFailed(VoltxError):
    """A phase of the curriculum ended with an error; its exit code becomes the curriculum's."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class History:
    """What a curriculum run's own events.jsonl says it already did, read through the run store's
    record types: a damaged line is skipped and counted (``skipped``), never taken for a record."""

    phases: dict[str, CurriculumPhase] = field(default_factory=dict)
    """The latest ``curriculum_phase`` record per phase."""
    started_with: str | None = None
    """The config file the curriculum was first started with ("" = built-in), None if it never started."""
    skipped: SkippedLines = field(default_factory=lambda: SkippedLines("events.jsonl"))


def _history(run_dir: Path) -> History:
    """What a resumed curriculum already did. The run's own writer is live (we hold the lock), so a
    partial last line is left unread, as every reader of a live run leaves it."""
    got = read_jsonl(run_dir / "events.jsonl", parse=parse_event)
    history = History()
    for problem in got.problems:
        history.skipped.add(problem)
    for ev in got.records:
        if isinstance(ev, CurriculumPhase):
            history.phases[ev.phase] = ev
        elif isinstance(ev, CurriculumStart) and history.started_with is None:
            history.started_with = ev.config
    return history


def check_settings(cfg: CurriculumConfig, known: set[str]) -> None:
    if not cfg.phases:
        raise ConfigError("curriculum.phases is empty; list the phases to run in order, e.g. [\"f1\", \"f2\", \"f3\"]")
    for name in cfg.phases:
        if name == "curriculum":
            raise ConfigError("curriculum.phases cannot contain 'curriculum' itself")
        if name not in known:
            raise ConfigError(f"curriculum.phases: no phase {name!r}; installed phases: {', '.join(sorted(known))} (see `voltx phases`)")
    if len(set(cfg.phases)) != len(cfg.phases):
        raise ConfigError(f"curriculum.phases lists a phase twice: {cfg.phases}")


def phase_settings(config_file: str, cfg: CurriculumConfig) -> dict[str, object]:
    """Each phase's settings as its run will resolve them (the same file and preset)."""
    from voltx.config import default_config_file, load_config, resolve_for_phase

    base = load_config(config_file or default_config_file())
    return {p: resolve_for_phase(base, p, preset=cfg.preset or None).phases[p] for p in cfg.phases}


def run(ctx) -> None:
    from voltx.plugins import load_plugins
    from voltx.runs.layout import new_run_id
    from voltx.runs.plan import plan_run

    cfg: CurriculumConfig = ctx.settings
    specs = load_plugins().specs("phases")
    check_settings(cfg, set(specs))
    root = ctx.run.dir.parents[1]
    history = _history(ctx.run.dir)
    done = history.phases
    if history.skipped.count:
        ctx.say(f"[curriculum] {history.skipped.summary()}; those records are ignored")
    # The phases read their tables from the file the curriculum was started with (a resumed
    # curriculum's own config is its saved copy, which holds only [curriculum]).
    config_file = history.started_with
    if config_file is None and history.skipped.count:
        # The start record may be the damaged line: starting over from the saved copy (which holds
        # only [curriculum]) would run every phase on built-in defaults. Refuse instead.
        raise DataError(f"{ctx.run.dir / 'events.jsonl'} has no readable curriculum_start record ({history.skipped.summary()}): "
                        "cannot tell which config file the phases were started with. Repair that line, or start a new curriculum.")
    if config_file is None:
        config_file = ctx.config.source if ctx.config.source and Path(ctx.config.source).is_file() else ""
        ctx.run.event("curriculum_start", config=str(Path(config_file).resolve()) if config_file else "", phases=cfg.phases)
    stack_from: str | None = None
    ctx.run.update_manifest(total_steps=len(cfg.phases), stage="curriculum")
    ctx.say(f"[curriculum] {' -> '.join(cfg.phases)} (preset {cfg.preset or 'none'}, gate {cfg.gate}); runs under {root}")
    settings = phase_settings(config_file, cfg)
    to_start = {p: s for p, s in settings.items() if p not in done}  # a phase already started reads its run's own config
    checked = preflight(to_start)
    if checked:
        ctx.say(f"[curriculum] preflight: {checked} data list entries of {', '.join(to_start)} read and valid")

    for index, phase in enumerate(cfg.phases):
        if ctx.stop.requested:  # the stop came as a phase was finishing: do not start the next one
            ctx.run.event("preempted", signal=ctx.stop.signal_name, step=ctx.global_step, stage="curriculum")
            raise Preempted(f"stopped by {ctx.stop.signal_name} before phase {phase}; resume the curriculum with "
                            f"`voltx run curriculum --resume {ctx.run.dir}`")
        before = done.get(phase)
        if before is not None and before.status == "finished":
            child = Path(before.run_dir)
            ctx.say(f"[curriculum] {phase}: already finished in {child}")
        else:
            resume = Path(before.run_dir) if before is not None and Path(before.run_dir).exists() else None
            if resume is not None:
                plan = plan_run(phase, runs_dir=root, resume=str(resume))
            else:
                overrides = parent_overrides(ctx)
                if stack_from is not None and hasattr(specs[phase].config_class(), "lang_from"):
                    overrides["lang_from"] = stack_from
                corpus = tokenizer_corpus(phase, settings)
                if corpus:  # the later phases' words, for the tokenizer the whole curriculum shares
                    overrides["tokenizer_corpus"] = corpus
                plan = plan_run(phase, config=config_file or None, preset=cfg.preset or None, overrides=overrides,
                                runs_dir=root, run_id=new_run_id())
            child, argv = plan.run_dir, plan.child_argv(progress="plain")
            ctx.run.event("curriculum_phase", phase=phase, status="started", run_dir=str(child), step=index,
                          resumed=resume is not None, argv=argv[2:])
            ctx.say(f"[curriculum] {phase}: {'resuming' if resume else 'starting'} run {child}")
            code = run_child(ctx, phase, argv)
            if code == EXIT_PREEMPTED:
                ctx.run.event("curriculum_phase", phase=phase, status="preempted", run_dir=str(child), step=index)
                raise Preempted(f"stopped during phase {phase} (its run {child} checkpointed); "
                                f"resume the curriculum with `voltx run curriculum --resume {ctx.run.dir}`")
            if code != 0:
                ctx.run.event("curriculum_phase", phase=phase, status="failed", run_dir=str(child), step=index, exit_code=code)
                raise ChildFailed(f"phase {phase} failed with exit code {code}; its log is {child / 'stdout.log'}. "
                                  f"Fix the cause, then `voltx run curriculum --resume {ctx.run.dir}` resumes it.", code)
            verdicts = child_verdicts(child)
            missed = [v for v in verdicts if not v.passed]
            ctx.run.event("curriculum_phase", phase=phase, status="finished", run_dir=str(child), step=index,
                          passed=len(verdicts) - len(missed), total=len(verdicts), missed=[v.metric for v in missed])
            ctx.record_evaluation("curriculum", index + 1, index + 1, {
                f"{phase}/{v.metric}": v.value for v in verdicts if v.value is not None})
            _gate(ctx, cfg, phase, child, verdicts, missed, last=index == len(cfg.phases) - 1)
        if (child / "artifacts" / STACK_FILE).exists():
            stack_from = str(child)
        ctx.global_step = index + 1
        ctx.hub.log({"step": ctx.global_step, "stage": "curriculum", "losses": {}, "phases_done": float(index + 1)})
    ctx.say(f"[curriculum] done: {', '.join(cfg.phases)}")


def _gate(ctx, cfg: CurriculumConfig, phase: str, child: Path, verdicts: list[Deliverable], missed: list[Deliverable], last: bool) -> None:
    summary = f"{len(verdicts) - len(missed)}/{len(verdicts)} deliverables passed"
    if not missed:
        ctx.say(f"[curriculum] {phase}: {summary}")
        return
    names = ", ".join(f"{v.metric} = {'n/a' if v.value is None else round(v.value, 4)} (target {v.op} "
                      f"{'n/a' if v.threshold is None else format(v.threshold, 'g')})" for v in missed)
    message = f"phase {phase} missed {len(missed)} deliverable(s): {names}"
    if cfg.gate == "stop" and not last:
        ctx.run.event("alert", step=ctx.global_step, rule="deliverable-gate", severity="error", message=message)
        raise GateStopped(f"{message}. The curriculum stopped before the next phase (curriculum.gate = \"stop\"); "
                          f"run {child} has the details (`voltx report {child}`). Set curriculum.gate = \"warn\" to go on anyway.")
    if cfg.gate == "warn" or (cfg.gate == "stop" and last):
        ctx.run.event("alert", step=ctx.global_step, rule="deliverable-gate", severity="warning", message=message)
        ctx.say(f"[curriculum] warning: {message}")
    else:
        ctx.say(f"[curriculum] {phase}: {summary} (gate = continue)")
