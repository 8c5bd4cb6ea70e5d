"""The run of ``voltx run lvm-sweep`` (:mod:`voltx_lvm.sweep`): start each architecture's ``lvm``
run, record it, forward stops, rank the finished runs."""

from __future__ import annotations

from pathlib import Path

from voltx.config import parse_override
from voltx.errors import EXIT_PREEMPTED, ConfigError, Preempted, VoltxError
from voltx.runs.linked import child_evaluations, plan_child, record_child, recorded_children, run_child
from voltx_lvm.lvm import MODELS, STAGE
from voltx_lvm.sweep import SweepConfig

RANKED_BY = f"{STAGE}/cosine"
SHOWN = ("cosine", "cosine_copy_last", "cosine_context_mean", "cosine_linear")


class ChildFailed(VoltxError):
    """An architecture's run ended with an error; its exit code becomes the sweep's."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def check_settings(cfg: SweepConfig) -> dict[str, object]:
    """The sweep's models and overrides, checked; the overrides as a mapping."""
    if not cfg.models:
        raise ConfigError(f"lvm-sweep.models is empty; list architectures to train, from {', '.join(MODELS)}")
    unknown = [m for m in cfg.models if m not in MODELS]
    if unknown:
        raise ConfigError(f"lvm-sweep.models: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(MODELS)}")
    if len(set(cfg.models)) != len(cfg.models):
        raise ConfigError(f"lvm-sweep.models lists an architecture twice: {cfg.models}")
    overrides = dict(parse_override(item) for item in cfg.overrides)
    if "model" in overrides:
        raise ConfigError("lvm-sweep.overrides cannot set model: the sweep sets it per run (lvm-sweep.models)")
    return overrides


def check(cfg: SweepConfig) -> None:
    """The sweep's input check (``PhaseSpec.check``), before its run directory exists: its own
    settings, then each architecture's lvm settings as the overrides and preset give them
    (data read as the lvm run will), so bad data fails the sweep, not its first child."""
    from dataclasses import fields

    from voltx_lvm.lvm import LvmConfig
    from voltx_lvm.lvm_data import check as check_lvm

    overrides = check_settings(cfg)
    names = {f.name for f in fields(LvmConfig)}
    given = {**LvmConfig.PRESETS.get(cfg.preset, {}), **{k: v for k, v in overrides.items() if k in names}}
    for model in cfg.models:
        check_lvm(LvmConfig(**{**given, "model": model}))


def ranking(results: dict[str, dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    """(model, its evaluation) best first by validation cosine."""
    return sorted(results.items(), key=lambda item: -item[1].get(RANKED_BY, float("-inf")))


def run(ctx) -> None:
    cfg: SweepConfig = ctx.settings
    overrides = check_settings(cfg)
    done, skipped = recorded_children(ctx)
    if skipped.count:
        ctx.say(f"[lvm-sweep] {skipped.summary()}; those records are ignored")
    ctx.run.update_manifest(total_steps=len(cfg.models), stage="sweep")
    ctx.say(f"[lvm-sweep] {' -> '.join(cfg.models)} (preset {cfg.preset or 'none'})")
    results: dict[str, dict[str, float]] = {}
    for index, model in enumerate(cfg.models):
        if ctx.stop.requested:
            raise Preempted(f"stopped by {ctx.stop.signal_name} before {model}; resume the sweep with "
                            f"`voltx run lvm-sweep --resume {ctx.run.dir}`")
        before = done.get(model)
        if before is not None and before.status == "finished":
            child = Path(before.run_dir)
            ctx.say(f"[lvm-sweep] {model}: already finished in {child}")
        else:
            child = _train(ctx, cfg, model, before, overrides)
        results[model] = child_evaluations(child)
        ctx.record_evaluation("sweep", index + 1, index + 1, {
            f"{model}/{name}": results[model][f"{STAGE}/{name}"] for name in SHOWN if f"{STAGE}/{name}" in results[model]})
        ctx.global_step = index + 1
        ctx.hub.log({"step": ctx.global_step, "stage": "sweep", "losses": {}, "runs_done": float(index + 1)})
    ctx.say("[lvm-sweep] ranking by validation cosine (baselines: copy-last / context mean / ridge):")
    for place, (model, ev) in enumerate(ranking(results), start=1):
        ctx.say(f"[lvm-sweep] {place}. {model:<11} " + " / ".join(f"{ev.get(f'{STAGE}/{n}', float('nan')):.4f}" for n in SHOWN))


def _train(ctx, cfg: SweepConfig, model: str, before, overrides: dict[str, object]) -> Path:
    resume = Path(before.run_dir) if before is not None and Path(before.run_dir).exists() else None
    plan = plan_child(ctx, "lvm", resume=resume) if resume else \
        plan_child(ctx, "lvm", preset=cfg.preset or None, overrides={**overrides, "model": model})
    child = plan.run_dir
    record_child(ctx, model, "started", child, resumed=resume is not None)
    ctx.say(f"[lvm-sweep] {model}: {'resuming' if resume else 'starting'} run {child}")
    code = run_child(ctx, model, plan.child_argv(progress="plain"))
    if code == EXIT_PREEMPTED:
        record_child(ctx, model, "preempted", child)
        raise Preempted(f"stopped during {model} (its run {child} checkpointed); resume the sweep with "
                        f"`voltx run lvm-sweep --resume {ctx.run.dir}`")
    if code != 0:
        record_child(ctx, model, "failed", child, exit_code=code)
        raise ChildFailed(f"{model} failed with exit code {code}; its log is {child / 'stdout.log'}. Fix the cause, "
                          f"then `voltx run lvm-sweep --resume {ctx.run.dir}` resumes it.", code)
    record_child(ctx, model, "finished", child)
    return child
