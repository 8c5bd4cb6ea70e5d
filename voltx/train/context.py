"""RunContext: what the shared loop hands a phase, and the loop's checkpoint plumbing.

A phase's runner receives one RunContext; it builds models and data, wraps each
training stage in a :class:`voltx.train.loop.Stage` and calls ``fit(ctx, stage)``. It
never touches checkpoints, signals or logging itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voltx.config import Config
from voltx import artifacts
from voltx.runs.checkpoints import Checkpoint, save_checkpoint
from voltx.runs.store import RunWriter
from voltx.plugin_specs import PhaseSpec
from voltx.train.metrics import MetricsHub
from voltx.train.progress import Reporter
from voltx.train.sharding import full_tensors
from voltx.train.signals import StopFlag
from voltx.train.state import capture_rng, optimizer_to_tensors


@dataclass
class RunContext:
    config: Config
    phase: PhaseSpec
    run: RunWriter
    device: torch.device
    hub: MetricsHub
    reporter: Reporter
    stop: StopFlag
    resume: Checkpoint | None = None
    global_step: int = 0
    completed_stages: list[str] = field(default_factory=list)
    evaluations: dict[str, float] = field(default_factory=dict)
    """Latest evaluated metrics of every stage (``<stage>/<metric>``): what deliverables read."""
    planned_steps: dict[str, int] = field(default_factory=dict)
    """Optimizer steps of each trained stage, in run order (``plan_steps``): progress and ETA
    then cover the whole run instead of the current stage."""
    job: Any = None
    """This process's :class:`voltx.train.distributed.Job` in a distributed run; None in one process."""
    launch: tuple[str, ...] = ()
    """The distributed options each run this one starts is given (:func:`voltx.runs.linked.plan_child`); () = none."""

    def __post_init__(self) -> None:
        if self.resume is not None:
            self.completed_stages = list(self.resume.state.get("completed_stages", []))
            self.global_step = int(self.resume.state.get("global_step", self.resume.step))
            self.evaluations = dict(self.resume.state.get("evaluations", {}))

    # -- what phases use ---------------------------------------------------------------------
    @property
    def settings(self) -> Any:
        """The phase's own config dataclass (``[<phase>]`` table, preset and overrides applied)."""
        return self.config.phases[self.phase.name]

    @property
    def artifacts_dir(self) -> Path:
        path = self.run.paths.artifacts
        path.mkdir(exist_ok=True)
        return path

    def artifact(self, name: str) -> Path:
        return self.artifacts_dir / name

    def save_artifact(self, name: str, tensors: dict[str, torch.Tensor], kind: str | None = None, args: dict | None = None,
                      **fields: Any) -> Path:
        """Write run artifact ``name`` (voltx.artifacts format: ``kind``, default the file's stem, constructor
        ``args`` and the kind's own ``fields``; the writing phase is recorded) and log an ``artifact`` event."""
        tensors = full_tensors(tensors)  # a sharded module's weights whole (every rank saves, so every rank gathers)
        path = artifacts.save(self.artifact(name), tensors, kind or Path(name).stem, args, phase=self.phase.name, **fields)
        self.run.event("artifact", name=name, path=str(path), step=self.global_step)
        return path

    def say(self, text: str) -> None:
        self.reporter.line(text)

    def plan_steps(self, steps: dict[str, int]) -> None:
        """Declare the steps of every stage this run trains, in order (done ones included), before
        the first ``fit``; a phase with one stage need not call it."""
        self.planned_steps = {name: int(n) for name, n in steps.items()}

    def stage_done(self, name: str) -> bool:
        return name in self.completed_stages

    def mark_stage_done(self, name: str) -> None:
        if name not in self.completed_stages:
            self.completed_stages.append(name)
        self.run.event("stage_end", stage=name, step=self.global_step)

    def resume_point(self, stage: str) -> Checkpoint | None:
        if self.resume is not None and self.resume.state.get("stage") == stage:
            return self.resume
        return None

    def rank_state(self, point: Checkpoint, extra: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """This rank's own saved state (RNG tensors, running sums; their JSON part) from ``point``:
        rank 0's is in ``extra``/``state.json``, rank r's in ``rank-r.safetensors``."""
        rank = self.job.rank if self.job is not None else 0
        if rank == 0:
            return extra, point.state["rng"]
        return point.tensors(f"rank-{rank}", device="cpu"), point.state["ranks"][str(rank)]["rng"]

    def record_evaluation(self, stage: str, step: int, epoch: int, metrics: dict[str, float]) -> None:
        named = {f"{stage}/{k}": float(v) for k, v in metrics.items()}
        self.evaluations.update(named)
        self.run.event("evaluation", stage=stage, step=self.global_step, epoch=epoch, metrics=named)

    # -- checkpointing (called by the loop) --------------------------------------------------
    def checkpoint(
        self,
        *,
        stage: str,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer | None,
        stage_step: int,
        epoch: int,
        batch: int,
        extra_tensors: dict[str, torch.Tensor],
        extra_state: dict[str, Any],
        generators: dict[str, torch.Generator],
    ) -> Path:
        started = time.perf_counter()
        self.run.flush()  # logs up to this step are on disk before the checkpoint that covers them
        # None: a stage without an optimizer (EvoMerge's generations); ``model`` is then anything with a state_dict()
        opt_tensors, opt_meta = optimizer_to_tensors(optimizer) if optimizer is not None else ({}, {})
        rng_tensors, rng_meta = capture_rng(generators)
        state = {
            "stage": stage,
            "stage_step": stage_step,
            "global_step": self.global_step,
            "epoch": epoch,
            "batch": batch,
            "completed_stages": self.completed_stages,
            "evaluations": self.evaluations,
            "optimizer": opt_meta,
            "rng": rng_meta,
            **extra_state,
        }
        own = {**rng_tensors, **extra_tensors}  # what differs between the ranks of a distributed run
        files = {"model": full_tensors(model.state_dict()), "extra": {**full_tensors(opt_tensors), **own}}  # fsdp: gathered whole
        if self.job is not None:  # gathered on rank 0, which writes the one checkpoint (see README, multi-GPU)
            from voltx.train.distributed import gather_rank_states

            ranks = gather_rank_states(self.job, own, rng_meta)
            if self.job.rank:
                self.job.await_commit()
                return self.run.paths.checkpoints / f"step-{self.global_step}"
            files.update({f"rank-{r}": tensors for r, (tensors, _) in ranks.items()})
            state["ranks"] = {str(r): {"rng": meta} for r, (_, meta) in ranks.items()}
        state["world_size"] = self.job.world if self.job is not None else 1
        try:
            path = save_checkpoint(self.run.paths.checkpoints, self.global_step, files, state, keep=self.config.run.keep_checkpoints)
        except Exception as exc:
            if self.job is not None:  # the other ranks wait for the commit: tell them it failed
                self.job.broadcast_json({"error": str(exc), "exit_code": getattr(exc, "exit_code", 1)})
            raise
        if self.job is not None:
            self.job.broadcast_json({"error": None})  # committed: every rank may go on (or exit 75)
        seconds = time.perf_counter() - started
        self.run.event("checkpoint", step=self.global_step, stage=stage, path=str(path), seconds=round(seconds, 3))
        self.run.update_manifest(last_checkpoint_step=self.global_step)
        return path
