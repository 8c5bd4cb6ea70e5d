"""The run of ``voltx run lvm`` (:mod:`voltx_lvm.lvm`): data, split, baselines, one trained stage."""

from __future__ import annotations

import numpy as np
import torch

from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_lvm.lvm import BUILTIN_OUT_OF_REACH, STAGE, LvmConfig
from voltx_lvm.lvm_data import Sequences, ordered_split, read_npz
from voltx_lvm.lvm_eval import baselines, evaluator, ridge_baseline, summary
from voltx_lvm.lvm_models import NextVector, next_vector_loss


def load_sequences(cfg: LvmConfig, seed: int) -> Sequences:
    """The configured data, checked (every data error is raised here, before anything is trained)."""
    if cfg.data:
        seqs = read_npz(cfg.data, cfg.context)
    else:
        from voltx_lvm.builtin_corpus import builtin_sequences

        seqs = builtin_sequences(cfg.context, seed, cfg.builtin_vocab, cfg.valid_fraction)
    if cfg.max_windows > 0:
        seqs.windows = seqs.windows[: cfg.max_windows]
    return seqs


def run(ctx: RunContext) -> None:
    cfg: LvmConfig = ctx.settings
    seed = ctx.config.run.seed
    seqs = load_sequences(cfg, seed)
    split = ordered_split(len(seqs.windows), cfg.valid_fraction, cfg.dev_fraction, cfg.data or "the built-in corpus")
    vectors = torch.from_numpy(np.ascontiguousarray(seqs.vectors))
    windows = torch.from_numpy(seqs.windows)
    fit, dev, valid = (windows[r.start:r.stop] for r in (split.fit, split.dev, split.valid))
    ridge, alpha = ridge_baseline(vectors, fit, dev)
    fixed = baselines(vectors, valid, ridge)
    ctx.run.event("data", source=seqs.about, windows=len(windows), fit=len(fit), dev=len(dev), valid=len(valid),
                  dim=seqs.dim, ridge_alpha=alpha, baselines=fixed)
    ctx.say(f"[lvm] {seqs.about}; windows: {len(fit):,} fit | {len(dev):,} dev | {len(valid):,} valid (ordered)")

    model = NextVector(cfg.model, seqs.dim, cfg.hidden, cfg.layers, cfg.heads, cfg.state_size, cfg.context,
                       cfg.dropout, cfg.residual).to(ctx.device)

    def collate(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        picked = vectors[torch.stack(rows)]
        return picked[:, :-1].to(ctx.device), picked[:, -1].to(ctx.device)

    def step(batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        context, target = batch
        return next_vector_loss(model(context), target, cfg.mse_weight)

    train_stage(ctx, STAGE, model, list(fit), collate, step, Hyper.of(cfg),
                title=f"LVM next-vector ({cfg.model})",
                evaluate=evaluator(model, vectors, valid, dev, fixed, cfg.eval_batch, ctx.device),
                summary=summary, labels={"cos_dist": "1-cos"},
                about=f"{cfg.model}, hidden {cfg.hidden} x {cfg.layers}, context {cfg.context}, d = {seqs.dim}")
    ctx.save_artifact("lvm_model.safetensors", {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                      kind="lvm_model", args=model.args)
    if not cfg.data:
        ctx.say(f"[lvm] the cosine targets (0.70, 0.85) are the handoff's, {BUILTIN_OUT_OF_REACH}.")
    ctx.mark_stage_done(STAGE)
