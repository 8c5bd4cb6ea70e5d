"""The phase kit: a trained stage from a phase's settings in one call.

Every built-in phase trains its stages the same way, so the way is written once here:
``EpochBatches`` over the phase's items, AdamW (one group, groups of their own, or some
parameters without weight decay), linear warm-up then cosine decay, a banner
(``=== title ===`` / ``Params:`` / ``Steps:``), and the progress and epoch lines of
:mod:`voltx.train.lines` with the stage's term labels, shown measurements and summary;
then trains through :func:`voltx.train.loop.fit`, the one loop. A phase supplies only what
is its own: the model, the items and their collate, the step, the evaluation and a short
summary of it (a deliverable next to its baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from voltx.train.batches import EpochBatches
from voltx.train.context import RunContext
from voltx.train.lines import Lines
from voltx.train.loop import Stage, fit
from voltx.train.schedules import warmup_cosine


@dataclass(frozen=True)
class Hyper:
    """A stage's optimisation settings (the names every phase config uses)."""

    epochs: int
    batch_size: int
    lr: float
    """Peak learning rate, reached after ``warmup`` steps."""
    warmup: int
    min_lr_ratio: float
    """The cosine decays to ``min_lr_ratio * lr`` at the stage's last step."""
    weight_decay: float
    grad_clip: float
    """Gradient norm clip (0 = none)."""

    @classmethod
    def of(cls, cfg: Any, **given: Any) -> "Hyper":
        """The fields of ``cfg`` (a phase's config or stage table) with these names; ``given``
        supplies those it names otherwise (``lr=cfg.decoder_lr``)."""
        return cls(**{f.name: given[f.name] if f.name in given else getattr(cfg, f.name) for f in fields(cls)})


def clip_each_group(opt: torch.optim.Optimizer, max_norm: float) -> None:
    """Clip each parameter group's gradients by its own norm.

    Why (F1, encoder and slot filler): one global norm lets one group's large early gradients
    (the encoder's norm 5-8 while the role and contrastive terms are high) shrink every update
    of the other by a factor that jumps from step to step; measured on srl_gen, the fill loss
    then stayed at ~0.95 for 100 steps, against ~0.45 with the groups clipped apart."""
    for group in opt.param_groups:
        torch.nn.utils.clip_grad_norm_(group["params"], max_norm)


def make_optimizer(model: torch.nn.Module, hyper: Hyper,
                   groups: Sequence[torch.nn.Module | Iterable[torch.nn.Parameter]] | None = None,
                   no_decay: Sequence[torch.nn.Parameter] = ()) -> torch.optim.AdamW:
    """AdamW over ``model``: one group, or one per entry of ``groups`` (modules or parameter
    lists, in that order), or, with ``no_decay``, the rest then those without weight decay."""
    if no_decay:
        rest = [p for p in model.parameters() if all(p is not q for q in no_decay)]
        return torch.optim.AdamW([{"params": rest, "weight_decay": hyper.weight_decay},
                                  {"params": list(no_decay), "weight_decay": 0.0}], lr=hyper.lr)
    if groups is not None:
        params = [list(g.parameters()) if isinstance(g, torch.nn.Module) else list(g) for g in groups]
        return torch.optim.AdamW([{"params": p} for p in params], lr=hyper.lr, weight_decay=hyper.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=hyper.lr, weight_decay=hyper.weight_decay)


def train_stage(
    ctx: RunContext,
    name: str,
    model: torch.nn.Module,
    items: Sequence[Any],
    collate: Callable[[list[Any]], Any],
    step: Callable[[Any], dict[str, torch.Tensor]],
    hyper: Hyper,
    *,
    title: str,
    evaluate: Callable[[], dict[str, float]] | None = None,
    summary: Callable[[dict[str, float]], str] | None = None,
    metrics: Sequence[str] = (),
    shown: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    seed_offset: int = 0,
    generators: dict[str, torch.Generator] | None = None,
    groups: Sequence[torch.nn.Module | Iterable[torch.nn.Parameter]] | None = None,
    no_decay: Sequence[torch.nn.Parameter] = (),
    clip_each: bool = False,
    optimizer: Any = None,
    after_epoch: Callable[[int], str | None] | None = None,
    about: str = "",
    tag: bool = True,
    digits: int = 4,
    background_collate: bool = False,
    shard: tuple[str, ...] = (),
) -> dict[str, float]:
    """Train ``model`` on ``items`` for ``hyper.epochs`` through the shared loop; returns the last evaluation.

    ``step`` returns ``{"loss": total, "<term>": ...}``; the terms named in ``metrics`` are
    measurements (logged as metrics, left out of the losses), those in ``shown`` appear in the
    progress line. ``summary`` turns the evaluation into the epoch line's middle part;
    ``after_epoch(epoch)`` may save per-epoch files and return a line to print after it.
    Batches shuffle with ``run.seed + seed_offset``; ``generators`` are checkpointed with the
    stage. ``clip_each`` clips each optimizer group by its own norm (:func:`clip_each_group`)
    instead of the whole model's. ``optimizer`` replaces the kit's AdamW with one the phase built
    over ``model`` (anything with torch.optim's ``param_groups``, ``zero_grad``, ``step``,
    ``state_dict`` and ``load_state_dict``: Agent Forge's Muon x Grokfast); the schedule sets
    every group's lr. ``about`` follows the parameter count in the banner.
    ``background_collate`` declares ``collate`` a pure function of its items (tokenising, padding;
    no RNG): it then runs on a background thread ahead of the step, its tensors pinned and copied
    to the device without blocking (:mod:`voltx.train.input_pipeline`). ``shard`` names the large
    modules ``hardware.strategy = "fsdp"`` shards (``Stage.shard``).
    """
    batches = EpochBatches(items, hyper.batch_size, ctx.config.run.seed + seed_offset, collate)
    total = batches.per_epoch * hyper.epochs
    opt = optimizer if optimizer is not None else make_optimizer(model, hyper, groups, no_decay)
    if clip_each and hyper.grad_clip > 0:
        opt.register_step_pre_hook(lambda o, args, kwargs: clip_each_group(o, hyper.grad_clip))
    lines = Lines(f"[{name}] " if tag else "", hyper.epochs, labels or {}, shown or {}, tuple(metrics), digits, summary)

    def epoch_end(epoch: int, means: dict[str, float], evaluation: dict[str, float], seconds: float) -> str | None:
        ctx.say(lines.epoch(epoch, means, evaluation, seconds))
        return after_epoch(epoch) if after_epoch is not None else None

    stage = Stage(
        name=name, model=model, optimizer=opt, batches=batches, epochs=hyper.epochs, step=step,
        lr_at=lambda s: warmup_cosine(s, max_lr=hyper.lr, warmup=hyper.warmup, total=total, min_ratio=hyper.min_lr_ratio),
        evaluate=evaluate, grad_clip=0.0 if clip_each else hyper.grad_clip, progress_line=lines.progress,
        epoch_end=epoch_end, generators=generators or {}, metrics=tuple(metrics), background_collate=background_collate,
        shard=tuple(shard),
    )
    params = sum(p.numel() for p in model.parameters())
    ctx.say(f"=== {title} ===\nParams:  {params:,}{f' ({about})' if about else ''}\nSteps:   {total} ({batches.per_epoch}/epoch)")
    return fit(ctx, stage)
