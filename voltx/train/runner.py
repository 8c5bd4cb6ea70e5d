"""Start or resume a phase as a run: config, run directory, signals, plugins, exit codes.

This is what ``voltx run`` (and the seed's ``train-*`` commands) call. It owns the
mapping from how a run ended to its status and exit code (README's table).
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from voltx.artifacts import write_atomic
from voltx.config import Config, build_config, load_config, phase_tables, read_toml, resolve_for_phase, to_toml
from voltx.errors import (
    EXIT_CANT_CREATE,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_RANK_LOST,
    Diverged,
    Preempted,
    VoltxError,
)
from voltx.plugins import PluginSet, load_plugins
from voltx.runs.checkpoints import newest_intact, set_aside
from voltx.runs.layout import RunPaths
from voltx.runs.plan import RunPlan, plan_run
from voltx.runs.mirror import mirror_spec, preflight
from voltx.runs.sink_feed import SinkFeed, check_sinks
from voltx.runs.store import RunWriter
from voltx.plugin_specs import SinkSpec, resolve
from voltx.telemetry.sidecar import start_sidecar, stop_sidecar
from voltx.train.launcher import check_world_size
from voltx.train.signals import StopFlag, TerminalOutput


@dataclass
class RunRequest:
    """What ``voltx run`` (or a plugin command, or a test) asks for; :func:`voltx.runs.plan.plan_run`
    resolves it."""

    phase: str
    config_path: str | None = None
    preset: str | None = None
    overrides: tuple[str, ...] | Mapping[str, Any] = ()
    """``KEY=VALUE`` texts as typed (``("epochs=1",)``), or ``{dotted key: value}`` (``{"epochs": 1}``)."""
    resume: str | None = None
    runs_dir: str | None = None
    progress: str = "auto"
    argv: tuple[str, ...] = ()
    run_id: str | None = None
    """The new run's id, when a launcher chose it (voltx-console, --tmux); None = generate one."""
    launch: tuple[str, ...] = ()
    """The distributed options (``--nproc-per-node N`` ...) for each run a phase that starts runs
    (``PhaseSpec.starts_runs``) starts; set by :func:`voltx.train.launcher.launch_request`."""
    sinks: tuple[str, ...] = ()
    """``--sink`` names, added to ``[run].sinks`` (and saved with the run's config, so a resume keeps them)."""

    def plan(self, plugins: PluginSet) -> RunPlan:
        """What this request runs: the plan every launcher's child makes of its argv too."""
        return plan_run(self.phase, plugins=plugins, config=self.config_path, preset=self.preset, overrides=self.overrides,
                        runs_dir=self.runs_dir, resume=self.resume, run_id=self.run_id)


def _prepare(req: RunRequest, plugins: PluginSet, world: int = 1) -> tuple[RunPlan, Config, RunWriter, list[SinkSpec]]:
    """Plan the run, resolve its config, check its sinks and the phase's input and open its run
    directory (new or resumed). A sink that is unknown, not installed or cannot work here, input
    the phase's ``check`` refuses, bad ``[hardware]`` values, or a resume with another number of
    processes (``world``) than its checkpoint's stop it before the run directory exists."""
    plan = req.plan(plugins)
    spec = plugins.get("phases", plan.phase)
    cfg = plan_config(plan, plugins)
    cfg.hardware.check()
    if plan.resume_dir is not None:
        check_world_size(plan.resume_dir, world)
        sinks = check_sinks(plugins, _unique([*cfg.run.sinks, *req.sinks]), plan.root)
        _check_input(spec, cfg)
        return plan, cfg, RunWriter.resume(plan.resume_dir, list(req.argv)), sinks
    cfg.run.sinks = _unique([*cfg.run.sinks, *req.sinks])
    sinks = check_sinks(plugins, cfg.run.sinks, plan.root)
    _check_input(spec, cfg)
    tables = {"paths": cfg.paths, "hardware": cfg.hardware, "run": cfg.run, plan.phase: cfg.phases[plan.phase]}
    header = f"# Resolved config of this run (phase {plan.phase}, preset {plan.preset or 'none'}); source: {cfg.source}\n"
    writer = RunWriter.create(plan.root, plan.phase, config_toml=to_toml(tables, header), overrides=list(plan.overrides),
                              preset=plan.preset, argv=list(req.argv), run_id=plan.run_id)
    return plan, cfg, writer, sinks


def _check_input(spec, cfg: Config) -> None:
    """The phase's own check of its input (:attr:`PhaseSpec.check`), before anything is written."""
    if spec.check is not None:
        resolve(spec.check)(cfg.phases[spec.name])


def plan_config(plan: RunPlan, plugins: PluginSet) -> Config:
    """The config ``plan`` runs with: a resumed run's saved one, else the config file's with the
    preset and overrides applied (nothing is written)."""
    classes = phase_tables(plugins)
    if plan.resume_dir is not None:
        saved = RunPaths(plan.resume_dir).config
        raw, text = read_toml(saved)
        return build_config(raw, classes, source=str(saved), text=text)
    cfg_path = plan.config_file
    base = load_config(cfg_path, classes) if cfg_path else build_config({}, classes)
    return resolve_for_phase(base, plan.phase, preset=plan.preset, overrides=list(plan.overrides))


def setup_packet(writer: RunWriter, phase: str, checkpoint) -> dict:
    """What the other ranks of a distributed run need from rank 0 to run the same phase: the run
    directory, its saved config and the checkpoint rank 0 resumes from."""
    return {"run_dir": str(writer.dir), "phase": phase, "config": writer.paths.config.read_text(encoding="utf-8"),
            "checkpoint": str(checkpoint.path) if checkpoint else None, "preset": writer.manifest.get("preset")}


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


def execute(req: RunRequest, plugins: PluginSet | None = None, *, restore_signals: bool = False) -> int:
    """Run (or resume) a phase to its end; return the exit code. User errors before the
    run directory exists propagate as VoltxError (the CLI prints them).

    The stop-signal handlers stay installed after the return, until the process exits, so a
    late signal exits with the code run.json records instead of another one; a caller that
    goes on after the run (a test, a notebook) passes ``restore_signals=True``."""
    plugins = plugins or load_plugins()
    job = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # one process of `voltx run --nproc-per-node N`
        from voltx.train.distributed import join

        job = join()
        if job.rank:  # the others train beside rank 0 and write nothing to the run
            from voltx.train.ranks import follow

            return follow(job, plugins, restore_signals=restore_signals)
    try:
        plan, cfg, writer, sinks = _prepare(req, plugins, job.world if job else 1)
    except BaseException as exc:
        if job is not None:  # the other ranks wait for the run's set-up: they exit with the same code
            job.broadcast_json({"exit_code": getattr(exc, "exit_code", EXIT_INTERNAL)})
        raise
    spec = plugins.get("phases", plan.phase)
    resumed = plan.resume_dir is not None
    # Handle stop signals from here on: importing torch alone can take seconds, and a run
    # whose directory exists must not die of a SIGTERM/SIGHUP in that window (it would be stale).
    stop = StopFlag(on_second=lambda: writer.update_manifest(status="interrupted", exit_code=130)).install()

    import torch  # noqa: F401  (heavy imports only once a run is really starting)

    from voltx.train.closing import closing_lines
    from voltx.train.context import RunContext
    from voltx.train.device import configure_determinism, pick_device, seed_everything
    from voltx.train.distributed import place
    from voltx.train.hardware import apply_tf32, record
    from voltx.train.metrics import MetricsHub
    from voltx.train.progress import Reporter

    # Telemetry lives in its own process so a run stuck in a CUDA call is still observed.
    sidecar = start_sidecar(writer.dir, os.getpid(), cfg.run.telemetry_interval)
    status, code, message = "failed", EXIT_INTERNAL, None
    told = job is None  # the other ranks have their set-up packet (or there are none)
    reporter = Reporter(stream=TerminalOutput(sys.stderr), mode=req.progress, copy=writer.stdout)
    try:
        trouble = _sink_trouble(writer, reporter)
        if cfg.run.mirror:  # reachable, writable and holding this run (not another's), before any training
            preflight(cfg.run.mirror, writer.dir)
            sinks = [*sinks, mirror_spec(cfg.run.mirror, trouble)]
        if sinks:  # before the first event: sinks see the run's start (or resume) too
            writer.attach_sinks(SinkFeed(sinks, writer.dir, trouble))
        checkpoint = _resume_checkpoint(writer, reporter) if resumed else None
        if resumed:
            writer.mark_resumed(checkpoint.step if checkpoint else None)
        else:
            writer.event("start", phase=spec.name, preset=plan.preset, overrides=list(plan.overrides))
        reporter.line(f"voltx: run {writer.dir} ({'resumed at step ' + str(checkpoint.step) if checkpoint else 'resumed from the start' if resumed else 'new'})")
        if req.launch:
            writer.event("launch_forwarded", options=list(req.launch))
            reporter.line(f"voltx: each run {spec.name} starts is given {' '.join(req.launch)}")
        device = place(pick_device(cfg.hardware), job)
        configure_determinism(cfg.hardware, device)
        seed_everything(cfg.run.seed)
        writer.update_manifest(device=str(device))
        record(writer, tf32=apply_tf32(cfg.hardware.tf32, device))
        hub = MetricsHub(writer, plugins, cfg.run.alert_rules, reporter.line)
        plugins.pm.hook.on_run_start(run=writer)
        ctx = RunContext(config=cfg, phase=spec, run=writer, device=device, hub=hub, reporter=reporter, stop=stop, resume=checkpoint, job=job,
                         launch=req.launch)
        if job is not None:
            job.broadcast_json(setup_packet(writer, spec.name, checkpoint))
            told = True
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
        for line in closing_lines(spec.name, writer.manifest.get("preset"), writer.dir, verdicts, spec.targets):
            reporter.line(line)
    except Exception as exc:
        status, code, message = _outcome(job.as_lost(exc) if job is not None else exc, spec.name, writer, reporter)
        if not told:
            job.broadcast_json({"exit_code": code})
    finally:
        stop.settle()  # the outcome is decided: from here on a signal must not change it
        try:
            stop_sidecar(sidecar)
            reporter.stop()
            plugins.pm.hook.on_run_end(run=writer, status=status)
        finally:  # whatever failed above, the run's end is recorded and its lock released
            try:
                writer.close(status, code, message)
            finally:
                stop.settle(code)
                if restore_signals:
                    stop.uninstall()
                if job is not None:
                    job.close()
    return code


def _sink_trouble(writer: RunWriter, reporter):
    """How a sink's failure or lag (or the mirror's) reaches the run: an ``alert`` event (rule ``sink``,
    or ``mirror``) and a line."""
    def report(name: str, message: str) -> None:
        writer.event("alert", rule="mirror" if name == "mirror" else "sink", severity="error", sink=name, message=message)
        reporter.line(f"voltx: ALERT [{'mirror' if name == 'mirror' else 'sink'}] {message}")
    return report


def _outcome(exc: Exception, phase: str, writer: RunWriter, reporter) -> tuple[str, int, str]:
    """(status, exit code, message) of a run that raised ``exc``, said on the run's output."""
    if isinstance(exc, Preempted):
        reporter.line(f"voltx: {exc}")
        return "preempted", exc.exit_code, str(exc)
    if isinstance(exc, (Diverged, VoltxError)):
        reporter.line(f"voltx: error: {exc}")
        if exc.exit_code == EXIT_RANK_LOST:
            writer.event("rank_lost", message=str(exc))
        return "diverged" if isinstance(exc, Diverged) else "failed", exc.exit_code, str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # A full disk is the machine's state, not a bug: exit 73 and advice, no traceback.
        message = (f"{exc.strerror} writing {exc.filename or writer.dir}; free space there, then resume with "
                   f"`voltx run {phase} --resume {writer.dir}`.")
        reporter.line(f"voltx: error: {message}")
        return "failed", EXIT_CANT_CREATE, message
    return _internal_error(exc, writer, reporter)


def _internal_error(exc: Exception, writer: RunWriter, reporter) -> tuple[str, int, str]:
    """A bug: keep the traceback in the run for the report."""
    tb = traceback.format_exc()
    reporter.line(tb)
    writer.event("exception", traceback=tb)
    return "failed", EXIT_INTERNAL, f"{type(exc).__name__}: {exc}"


def _resume_checkpoint(writer: RunWriter, reporter):
    """The newest intact checkpoint of a resumed run; damaged newer ones are set aside,
    with an event and a line each (a resume must not fail on them at every retry)."""
    checkpoint, damaged = newest_intact(writer.paths.checkpoints)
    instead = f"resuming from {checkpoint.path.name}" if checkpoint else "no intact checkpoint left: resuming from the start"
    for path, why in damaged:
        set_aside(path, why)
        writer.event("checkpoint_damaged", path=str(path), reason=why, resumed_from=checkpoint.step if checkpoint else None)
        reporter.line(f"voltx: checkpoint {path} is damaged ({why}); set aside, {instead}")
    return checkpoint


def judge_deliverables(ctx) -> list[dict]:
    """Judge the final evaluations against the phase's deliverables (:meth:`Deliverable.judge`); one event each."""
    verdicts = []
    for d in ctx.phase.deliverables:
        verdict = d.judge(ctx.evaluations)
        ctx.run.event("deliverable", step=ctx.global_step, **verdict)
        ctx.say(verdict_line(verdict))
        verdicts.append(verdict)
    return verdicts


def verdict_line(v: dict) -> str:
    """``deliverable PASS: metric = value (target > t; baseline b = x; ablation a = y)``, and why it failed."""
    def shown(x):
        return "n/a" if x is None else f"{x:.4f}"

    parts = [f"target {v['op']} {v['threshold']:g}"]
    baseline_metric = v.get("baseline_metric") or next(iter(v.get("baselines") or {}), None)
    if baseline_metric:
        parts.append(f"baseline {baseline_metric} = {shown(v.get('baseline'))}, margin {v.get('margin') or 0:g}")
    for key, value in (v.get("ablations") or {}).items():
        parts.append(f"ablation {key} = {shown(value)}")
    line = f"deliverable {'PASS' if v['passed'] else 'FAIL'}: {v['metric']} = {shown(v.get('value'))} ({'; '.join(parts)})"
    return line if v["passed"] or not v.get("reason") else f"{line}: {v['reason']}"


def publish_artifacts(ctx) -> None:
    """Copy the phase's artifacts to [paths].checkpoints_dir (atomically, file by file)."""
    target = Path(ctx.config.paths.checkpoints_dir)
    names = [n for n in ctx.phase.artifacts if ctx.artifact(n).exists()]
    if not names:
        return
    for name in names:
        write_atomic(target / name, lambda tmp, src=ctx.artifact(name): shutil.copyfile(src, tmp))
    ctx.run.event("published", files=names, to=str(target))
    ctx.say(f"artifacts published to {target}: {', '.join(names)}")
