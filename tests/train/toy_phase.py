"""A small test phase on the shared loop, installed by tests as a real plugin distribution.

Linear regression with dropout (so the torch RNG matters for exact resume), optionally its first
layer sharded under hardware.strategy = "fsdp" and its gradients clipped, optional NaN
injection at a chosen step, a per-step sleep so signals can arrive mid-run, and a delay at
interpreter exit (what a CUDA teardown costs) so a signal can arrive after the run ended.
"""

from __future__ import annotations

import atexit
import time
from dataclasses import dataclass

from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec


@dataclass
class ToyConfig:
    epochs: int = 3
    batch_size: int = 8
    rows: int = 64
    lr: float = 0.05
    nan_at_step: int = -1
    sleep: float = 0.0
    exit_delay: float = 0.0
    grad_clip: float = 0.0
    shard: bool = False
    """Name the first layer as the module hardware.strategy = "fsdp" shards (the last stays replicated)."""
    report_batch_size: bool = False
    """The step reports how many samples it trained on (``"batch_size"``), as a phase that filters its batches would."""


def run(ctx):
    import torch

    from voltx.train.batches import EpochBatches
    from voltx.train.loop import Stage, fit

    cfg = ctx.settings
    if cfg.exit_delay:
        atexit.register(time.sleep, cfg.exit_delay)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.rows, 4, generator=gen)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    batches = EpochBatches(list(range(cfg.rows)), cfg.batch_size, ctx.config.run.seed, lambda idx: torch.tensor(idx))
    counter = {"n": 0}

    def step(idx):
        counter["n"] += 1
        if cfg.sleep:
            time.sleep(cfg.sleep)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        if cfg.nan_at_step >= 0 and ctx.global_step + 1 >= cfg.nan_at_step:
            loss = loss * float("nan")
        return {"loss": loss, "batch_size": torch.tensor(len(idx))} if cfg.report_batch_size else {"loss": loss}

    def evaluate():
        return {"mse": float(torch.nn.functional.mse_loss(model(x), y)), "mse_mean": float(y.var(unbiased=False))}

    fit(ctx, Stage("fit", model, opt, batches, cfg.epochs, step, lambda s: cfg.lr, evaluate=evaluate, grad_clip=cfg.grad_clip,
                   shard=("0",) if cfg.shard else ()))
    ctx.save_artifact("toy.safetensors", model.state_dict())


@hookimpl
def register_phases(register):
    register(PhaseSpec("toy", "test phase", run, ToyConfig, deliverables=(Deliverable("fit/mse", "<", 100.0, baselines=("fit/mse_mean",)),), artifacts=("toy.safetensors",),
                      sharded=lambda cfg: {"0": 80} if cfg.shard else {}))
