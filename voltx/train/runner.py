"""Start or resume a phase as a run: config, run directory, signals, plugins, exit codes.

This is what ``voltx run`` (and the seed's ``train-*`` commands) call. It owns the
mapping from how a run ended to its status and exit code (README's table).
"""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from voltx.config import Config, build_config, default_config_file, load_config, read_toml, resolve_for_phase, to_toml
from voltx.errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    Diverged,
    Preempted,
    UsageError,
    VoltxError,
)
from voltx.plugins import PluginSet, load_plugins
from voltx.runs.checkpoints import latest_checkpoint
from voltx.runs.layout import RunPaths, list_run_dirs, load_manifest, resolve_run, runs_root
from voltx.runs.lock import writer_alive
from voltx.runs.store import RunWriter, effective_status
from voltx.specs import resolve
from voltx.telemetry.sidecar import start_sidecar, stop_sidecar

RESUMABLE = {"preempted", "failed", "stale", "diverged", "interrupted", "running"}


@dataclass
class RunRequest:
    phase: str
    config_path: str | None = None
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    resume: str | None = None
    runs_dir: str | None = None
    progress: str = "auto"
    argv: tuple[str, ...] = ()
    run_id: str | None = None
    """The new run's id, when a launcher chose it (voltx-console, --tmux); None = generate one."""


def phase_classes(plugins: PluginSet) -> dict[str, type]:
    return {name: spec.config_class for name, spec in plugins.specs("phases").items()}


def _find_resumable(root: Path, phase: str) -> Path | None:
    for run_dir in reversed([r for r in list_run_dirs(root) if r.parent.name == phase]):
        read = load_manifest(run_dir)
        status = effective_status(run_dir, read)
        if status == "running" or (read.damaged and writer_alive(run_dir)):
            continue  # live: not ours to take over
        if read.damaged:  # the latest run: say so (exit 65, which field), never start a new one past it silently
            read.intact(run_dir, "resume it")
        return run_dir if status in RESUMABLE else None
    return None


def _prepare(req: RunRequest, plugins: PluginSet) -> tuple[Config, RunWriter, bool]:
    """Resolve the config and open the run directory (new or resumed)."""
    spec = plugins.get("phases", req.phase)
    classes = phase_classes(plugins)
    if req.resume:
        if req.overrides or req.preset:
            raise UsageError(
                "--resume continues a run with the config it was started with; drop the overrides/preset, "
                "or start a new run without --resume to change them."
            )
        if req.run_id:
            raise UsageError("--run-id names a new run; --resume continues an existing one: give one of them.")
        base_cfg = load_config(req.config_path, classes) if req.config_path else build_config({}, classes)
        root = runs_root(req.runs_dir, base_cfg.paths.runs_dir)
        run_dir = _find_resumable(root, spec.name) if req.resume == "auto" else resolve_run(req.resume, root, spec.name)
        if run_dir is not None:
            read = load_manifest(run_dir)
            manifest = read.intact(run_dir, "resume it")
            if manifest.phase != spec.name and not read.newer:  # a newer format: RunWriter.resume says so
                raise UsageError(f"run {run_dir} is a {manifest.phase!r} run, not {spec.name!r}.")
            if effective_status(run_dir, read) == "finished":
                raise UsageError(f"run {run_dir} already finished; start a new one without --resume.")
            raw, text = read_toml(RunPaths(run_dir).config)
            cfg = build_config(raw, classes, source=str(RunPaths(run_dir).config), text=text)
            return cfg, RunWriter.resume(run_dir, list(req.argv)), True
        print(f"voltx: nothing to resume for phase {spec.name!r} under {root}; starting a new run", file=sys.stderr)
    cfg_path = req.config_path or default_config_file()
    base = load_config(cfg_path, classes) if cfg_path else build_config({}, classes)
    cfg = resolve_for_phase(base, spec.name, preset=req.preset, overrides=list(req.overrides), phase_classes=classes)
    tables = {"paths": cfg.paths, "hardware": cfg.hardware, "run": cfg.run, spec.name: cfg.phases[spec.name]}
    header = f"# Resolved config of this run (phase {spec.name}, preset {req.preset or 'none'}); source: {cfg.source}\n"
    root = runs_root(req.runs_dir, cfg.paths.runs_dir)
    writer = RunWriter.create(root, spec.name, config_toml=to_toml(tables, header), overrides=list(req.overrides), preset=req.preset, argv=list(req.argv), run_id=req.run_id)
    return cfg, writer, False


def execute(req: RunRequest, plugins: PluginSet | None = None) -> int:
    """Run (or resume) a phase to its end; return the exit code. User errors before the
    run directory exists propagate as VoltxError (the CLI prints them)."""
    plugins = plugins or load_plugins()
    spec = plugins.get("phases", req.phase)
    cfg, writer, resumed = _prepare(req, plugins)

    import torch  # noqa: F401  (heavy imports only once a run is really starting)

    from voltx.train.closing import closing_lines
    from voltx.train.context import RunContext
    from voltx.train.device import configure_determinism, pick_device, seed_everything
    from voltx.train.metrics import MetricsHub
    from voltx.train.progress import Reporter
    from voltx.train.signals import StopFlag

    # Telemetry lives in its own process so a run stuck in a CUDA call is still observed.
    sidecar = start_sidecar(writer.dir, os.getpid(), cfg.run.telemetry_interval)
    status, code, message = "failed", EXIT_INTERNAL, None
    reporter = Reporter(mode=req.progress, copy=writer.stdout)
    stop = StopFlag(on_second=lambda: writer.update_manifest(status="interrupted", exit_code=130)).install()
    hub = None
    try:
        checkpoint = latest_checkpoint(writer.paths.checkpoints) if resumed else None
        if resumed:
            writer.mark_resumed(checkpoint.step if checkpoint else None)
        else:
            writer.event("start", phase=spec.name, preset=req.preset, overrides=list(req.overrides))
        reporter.line(f"voltx: run {writer.dir} ({'resumed at step ' + str(checkpoint.step) if checkpoint else 'resumed from the start' if resumed else 'new'})")
        device = pick_device(cfg.hardware)
        configure_determinism(cfg.hardware, device)
        seed_everything(cfg.run.seed)
        writer.update_manifest(device=str(device))
        hub = MetricsHub(writer, plugins, cfg.run.sinks, cfg.run.alert_rules, reporter.line)
        plugins.pm.hook.on_run_start(run=writer)
        ctx = RunContext(config=cfg, phase=spec, run=writer, device=device, hub=hub, reporter=reporter, stop=stop, resume=checkpoint)
        resolve(spec.runner)(ctx)
        verdicts = judge_deliverables(ctx)
        if writer.manifest.get("preset") is None:
            publish_artifacts(ctx)
        elif ctx.phase.artifacts:  # a quick look must never overwrite a real run's artifacts
            reporter.line(f"voltx: preset run: artifacts kept in {ctx.artifacts_dir} (not published to {cfg.paths.checkpoints_dir})")
        status, code = "finished", EXIT_OK
        failed = [v for v in verdicts if not v["passed"]]
        message = f"{len(verdicts) - len(failed)}/{len(verdicts)} deliverables passed" if verdicts else None
        reporter.line(f"voltx: run finished: {writer.dir}" + (f" ({message})" if message else ""))
        for line in closing_lines(spec.name, writer.manifest.get("preset"), writer.dir, verdicts):
            reporter.line(line)
    except Preempted as exc:
        status, code, message = "preempted", exc.exit_code, str(exc)
        reporter.line(f"voltx: {exc}")
    except Diverged as exc:
        status, code, message = "diverged", exc.exit_code, str(exc)
        reporter.line(f"voltx: error: {exc}")
    except VoltxError as exc:
        status, code, message = "failed", exc.exit_code, str(exc)
        reporter.line(f"voltx: error: {exc}")
    except Exception as exc:  # a bug: keep the traceback in the run for the report
        tb = traceback.format_exc()
        status, code, message = "failed", EXIT_INTERNAL, f"{type(exc).__name__}: {exc}"
        reporter.line(tb)
        writer.event("exception", traceback=tb)
    finally:
        stop_sidecar(sidecar)
        reporter.stop()
        stop.uninstall()
        if hub is not None:
            hub.close()
        try:
            plugins.pm.hook.on_run_end(run=writer, status=status)
        finally:
            writer.close(status, code, message)
    return code


def judge_deliverables(ctx) -> list[dict]:
    """Compare the final evaluations with the phase's deliverables; one event each."""
    verdicts = []
    for d in ctx.phase.deliverables:
        value = ctx.evaluations.get(d.metric)
        passed = value is not None and d.passed(value)
        verdict = {"metric": d.metric, "op": d.op, "threshold": d.threshold, "value": value, "passed": passed, "description": d.description}
        ctx.run.event("deliverable", step=ctx.global_step, **verdict)
        mark = "PASS" if passed else "FAIL"
        shown = "n/a" if value is None else f"{value:.4f}"
        ctx.say(f"deliverable {mark}: {d.metric} = {shown} (target {d.op} {d.threshold:g})")
        verdicts.append(verdict)
    return verdicts


def publish_artifacts(ctx) -> None:
    """Copy the phase's artifacts to [paths].checkpoints_dir (atomically, file by file)."""
    target = Path(ctx.config.paths.checkpoints_dir)
    names = [n for n in ctx.phase.artifacts if ctx.artifact(n).exists()]
    if not names:
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        tmp = target / f".{name}.tmp"
        shutil.copyfile(ctx.artifact(name), tmp)
        tmp.replace(target / name)
    ctx.run.event("published", files=names, to=str(target))
    ctx.say(f"artifacts published to {target}: {', '.join(names)}")
