"""The shared training loop. Every phase trains through ``fit``; read it top to bottom.

Per step: stop-flag check -> schedule -> forward (phase's ``step``) -> backward (per
micro-batch when the collate returns :class:`~voltx.train.batches.MicroBatches`) -> clip ->
optimizer step -> log. Per epoch: evaluate -> epoch line -> checkpoint -> whole-run progress
line (step/total over every planned stage, ETA). Non-finite losses
are tracked on the device (no per-step sync) and checked before anything is logged or
saved, so a poisoned state is never written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from voltx.errors import Diverged, Preempted
from voltx.runs.store import eta_seconds
from voltx.train.batches import EpochBatches
from voltx.train.context import RunContext
from voltx.train.distributed import shard
from voltx.train.hardware import prepare_stage
from voltx.train.lines import Lines
from voltx.train.precision import Precision
from voltx.train.preflight import check_resources
from voltx.train.progress import progress_line, run_total, stage_label
from voltx.train.sharding import apply_strategy, clip_gradients, load_model, shard_optimizer_state
from voltx.train.state import capture_rng, optimizer_from_tensors, restore_rng


@dataclass
class Stage:
    """What a phase supplies for one training stage."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    batches: EpochBatches
    epochs: int
    step: Callable[[Any], dict[str, torch.Tensor]]
    """Forward pass on one batch: ``{"loss": total, "<term>": ...}`` (scalars; "loss" gets the gradient).
    For a :class:`~voltx.train.batches.MicroBatches` batch it is called once per micro-batch and
    returns that micro-batch's share of the step's loss and terms (they are added up)."""
    lr_at: Callable[[int], float]
    evaluate: Callable[[], dict[str, float]] | None = None
    grad_clip: float = 0.0
    progress_line: Callable[[dict[str, Any]], str] | None = None
    """Logged step -> line to print; default: :class:`voltx.train.lines.Lines` (the kit passes its own)."""
    epoch_end: Callable[[int, dict[str, float], dict[str, float], float], str | None] | None = None
    """(epoch 1-based, train means, evaluation, seconds) -> line to print; may save per-epoch files.
    Default: the :class:`~voltx.train.lines.Lines` epoch line."""
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    """Terms of ``step``'s output that are measurements, not losses (an accuracy, ``rar/iterations_mean``):
    logged as top-level series of metrics.jsonl instead of under ``losses``."""
    background_collate: bool = False
    """``batches.collate`` is a pure function of its items (no RNG, no shared state it changes): it may
    run on a background thread ahead of the step (:mod:`voltx.train.input_pipeline`, ``[hardware].prefetch``)."""
    shard: tuple[str, ...] = ()
    """Modules of ``model`` (``named_modules`` names) that ``hardware.strategy = "fsdp"`` shards with FSDP2
    (:mod:`voltx.train.sharding`); the step must call them as ``module(...)`` and never change their output
    in place. Empty: the stage trains data parallel."""


def fit(ctx: RunContext, stage: Stage) -> dict[str, float]:
    """Train ``stage`` to its last epoch (resuming exactly if a checkpoint covers it).

    Longer than the house's 80 lines on purpose: this is the one loop every phase trains
    through, kept readable top to bottom like nanoGPT's (start or resume -> per step: stop
    check, schedule, forward, backward, clip, step, log -> per epoch: evaluate, epoch line,
    checkpoint). Its parts share the loop's state (step, epoch, batch, running sums, the
    device-side divergence flag) that ``save`` captures; split into helpers they would pass
    that state around and the order of RNG draws and checkpoint contents, which exact resume
    depends on, would no longer be visible in one place.
    """
    job = ctx.job  # None in one process; else the ranks split each batch and average gradients
    model, opt, batches = stage.model, stage.optimizer, shard(stage.batches, job)
    sharded = apply_strategy(ctx, stage, job)  # fsdp: the stage's large modules split across the ranks, before a resume loads
    per_epoch = batches.per_epoch
    total = per_epoch * stage.epochs
    log_every = max(1, ctx.config.run.log_every)
    ckpt_every = ctx.config.run.checkpoint_every
    device = ctx.device
    amp = Precision(ctx.config.hardware.precision, device, sharded)  # autocast, loss scaling, micro-batches

    # -- start or resume -------------------------------------------------------------------
    step, epoch, start_batch = 0, 0, 0
    sums = torch.zeros(0)
    last_eval: dict[str, float] = {}
    point = ctx.resume_point(stage.name)
    if point is not None:
        load_model(model, point.tensors("model", device=str(device)))
        extra = point.tensors("extra", device="cpu")
        optimizer_from_tensors(opt, {k: v.to(device) if not k.endswith("/step") else v for k, v in extra.items()}, point.state["optimizer"])
        shard_optimizer_state(opt)  # under fsdp: the checkpoint's full moments split as their parameters are
        own, own_rng = ctx.rank_state(point, extra)  # this rank's RNG and running sums
        restore_rng(own, own_rng, stage.generators)
        step, epoch, start_batch = point.state["stage_step"], point.state["epoch"], point.state["batch"]
        sums = own.get("loop/epoch_sums", sums).to(device)
        last_eval = point.state.get("last_eval", {})
        term_names_resumed = list(point.state.get("term_names", []))
        amp.load(point.state)
        ctx.say(f"[{stage.name}] resumed at step {step}/{total} (epoch {epoch + 1}, batch {start_batch})")
    else:
        params = sum(p.numel() for p in model.parameters())
        check_resources(ctx.run.dir, params, ctx.config.run.keep_checkpoints, device)
        ctx.run.event("stage_start", stage=stage.name, step=ctx.global_step, total_steps=total, parameters=params)
    base = ctx.global_step - step  # global step at this stage's step 0
    whole = run_total(ctx.planned_steps, stage.name, base, total)  # later planned stages count too
    label = stage_label(ctx.planned_steps, stage.name)
    ctx.run.update_manifest(total_steps=whole, stage=stage.name)
    term_names: list[str] = term_names_resumed if point is not None else []
    lines = Lines(f"[{stage.name}] ", stage.epochs, {}, {}, stage.metrics, 4, None)  # unless the stage brings its own
    step_line, epoch_line = stage.progress_line or lines.progress, stage.epoch_end or lines.epoch
    bad = torch.zeros((), dtype=torch.bool, device=device)
    feed = prepare_stage(ctx, stage, amp, point, batches)  # [hardware]: compile, checkpointing, micro-batches, prefetch
    if job is not None:
        job.sync_parameters(model)  # every replica starts from rank 0's weights

    def save(ep: int, batch: int):
        if bool(bad if job is None else job.any_tensor(bad)):  # never write a poisoned state
            raise Diverged(f"[{stage.name}] non-finite loss or gradient before step {step}; last good checkpoint kept")
        return ctx.checkpoint(
            stage=stage.name, model=model, optimizer=opt, stage_step=step, epoch=ep, batch=batch,
            extra_tensors={"loop/epoch_sums": sums.detach().cpu()},
            extra_state={"last_eval": last_eval, "term_names": term_names, "micro_batches": feed.micro, **amp.state()},
            generators=stage.generators,
        )

    def saved(path) -> None:  # a phase's per-epoch weight exports are not this: say which one --resume reads
        ctx.say(f"[{stage.name}] resumable checkpoint: {path} (step {ctx.global_step}; --resume continues from here)")

    ctx.reporter.start(label, whole, completed=ctx.global_step)
    timed_from, timed_step = time.perf_counter(), ctx.global_step  # the whole-run ETA's pace

    def wall_pace() -> float | None:
        """Steps per second of wall time since this stage began or resumed, evaluations and checkpoint
        writes included (the remaining epochs evaluate and checkpoint too): the pace of the ETA."""
        done = ctx.global_step - timed_step
        return done / max(time.perf_counter() - timed_from, 1e-9) if done else None

    while epoch < stage.epochs:
        model.train()
        epoch_started = time.perf_counter()
        tick, steps_since, samples_since = time.perf_counter(), 0, 0
        batches_of_epoch = feed.iterate(epoch, start_batch)
        for b, batch in batches_of_epoch:
            if ctx.stop.requested if job is None else job.any(ctx.stop.requested):  # every rank stops at the same step
                save(epoch, b)
                by = ctx.stop.signal_name or "a signal to another process of the run"
                ctx.run.event("preempted", signal=ctx.stop.signal_name, step=ctx.global_step, stage=stage.name)
                batches_of_epoch.close()  # the collate thread ends now, not at interpreter exit (an abort there)
                raise Preempted(f"stopped by {by} at step {ctx.global_step}; resume with `voltx run {ctx.phase.name} --resume {ctx.run.dir}`")

            # -- one optimizer step ----------------------------------------------------------
            lr = stage.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            out = amp.forward_backward(stage.step, batch)  # each micro-batch's, when accumulating
            loss = out["loss"]
            if job is not None:
                job.average_gradients(model)  # after the last micro-batch's backward: one all-reduce per step
            bad |= ~torch.isfinite(loss.detach())
            amp.unscale(opt)
            if stage.grad_clip > 0:
                norm = clip_gradients(model.parameters(), stage.grad_clip)
                if not amp.scaled:  # with a loss scaler, an inf gradient is a skipped step, not divergence
                    bad |= ~torch.isfinite(norm)
            amp.step(opt)
            step += 1
            ctx.global_step += 1
            steps_since += 1
            samples_since += int(out["batch_size"]) if "batch_size" in out else batches.share  # this rank's

            # -- running sums for the epoch line (device tensors: no sync) ------------------
            terms = {k: v.detach().float() for k, v in out.items() if k != "batch_size"}
            if not term_names:
                term_names = list(terms)
            stacked = torch.stack([terms[k] for k in term_names])
            sums = stacked.clone() if sums.numel() == 0 else sums + stacked

            # -- log -----------------------------------------------------------------------
            if step % log_every == 0 or b == 0 or step == total:
                if job is not None:  # the logged losses are the means over the ranks, the samples their sum
                    stacked, bad, samples_since = job.mean(stacked), job.any_tensor(bad), job.total(samples_since)
                values = stacked.tolist()  # one sync per logged step
                if bool(bad):
                    ctx.run.event("diverged", step=ctx.global_step, stage=stage.name, losses=dict(zip(term_names, values)))
                    raise Diverged(f"[{stage.name}] loss became non-finite by step {ctx.global_step}; the last committed checkpoint is kept. Lower the learning rate and resume or restart.")
                now = time.perf_counter()
                elapsed = max(now - tick, 1e-9)
                named = dict(zip(term_names, values))
                measured = {k: named.pop(k) for k in stage.metrics if k in named}
                info = {
                    "step": ctx.global_step, "stage": stage.name, "stage_step": step, "total_steps": whole,
                    "epoch": epoch + 1, "epochs": stage.epochs, "batch": b + 1, "per_epoch": per_epoch,
                    "losses": named, "metrics": measured, "lr": lr,
                    "samples_per_sec": samples_since / elapsed, "steps_per_sec": steps_since / elapsed,
                    "wall_steps_per_sec": wall_pace(),
                }
                tick, steps_since, samples_since = now, 0, 0
                ctx.hub.log({**{k: v for k, v in info.items() if k not in ("epochs", "per_epoch", "metrics")}, **measured})
                ctx.say(step_line(info))
                ctx.reporter.update(ctx.global_step, f"loss {values[0]:.4f}", eta_seconds("running", ctx.global_step, whole, None, info["wall_steps_per_sec"]))
            if ckpt_every and step % ckpt_every == 0 and b + 1 < per_epoch:
                writing = time.perf_counter()
                saved(save(epoch, b + 1))
                tick += time.perf_counter() - writing  # samples/s is training speed: a checkpoint write is not a stall

        # -- end of epoch: evaluate, report, checkpoint ------------------------------------------
        epoch_sums = sums if job is None or not sums.numel() else job.mean(sums)
        means = dict(zip(term_names, (epoch_sums / per_epoch).tolist())) if sums.numel() else {}
        if stage.evaluate is not None:
            if job is None or job.rank == 0 or sharded:  # rank 0 evaluates the whole set; under fsdp every rank
                # must run the sharded modules' forwards with it, so each evaluates the same set; the others get rank 0's figures
                rng_tensors, rng_meta = capture_rng(stage.generators)  # evaluation must not shift training RNG
                model.eval()
                with torch.no_grad(), amp.autocast():
                    last_eval = stage.evaluate()
                model.train()
                restore_rng(rng_tensors, rng_meta, stage.generators)
            if job is not None:
                last_eval = job.broadcast_json({k: float(v) for k, v in last_eval.items()} if job.rank == 0 else None)
            ctx.record_evaluation(stage.name, step, epoch + 1, last_eval)
        seconds = time.perf_counter() - epoch_started
        line = epoch_line(epoch + 1, means, last_eval, seconds)
        if line:
            ctx.say(line)
        epoch += 1
        start_batch = 0
        sums = torch.zeros(0)
        saved(save(epoch, 0))
        ctx.say(progress_line(ctx.global_step, whole, label, eta_seconds("running", ctx.global_step, whole, None, wall_pace())))
    ctx.run.event("input", stage=stage.name, step=ctx.global_step, **feed.stats.as_record())  # did the step wait for its batches?
    ctx.reporter.stop()
    return last_eval
