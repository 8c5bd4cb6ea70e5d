"""The phase kit: settings, optimizer groups, the lines it derives from a step's terms, and a
stage trained through it equal, number for number, to the same stage built by hand."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass

import pytest
import torch

from voltx import hookimpl
from voltx.plugins import load_plugins
from voltx.runs.layout import list_run_dirs
from voltx.plugin_specs import Deliverable, PhaseSpec
from voltx.train.kit import Hyper, make_optimizer
from voltx.train.lines import Lines, fmt_lr
from voltx.train.runner import RunRequest, execute


@dataclass
class KitConfig:
    rows: int = 40
    epochs: int = 2
    batch_size: int = 8
    lr: float = 0.05
    warmup: int = 3
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    by_hand: bool = False
    """Build the same stage without the kit (EpochBatches + AdamW + warmup_cosine + Stage)."""


def _data():
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def run_kit_phase(ctx):
    from voltx.train.batches import EpochBatches
    from voltx.train.kit import train_stage
    from voltx.train.loop import Stage, fit
    from voltx.train.schedules import warmup_cosine

    cfg = ctx.settings
    x, y = _data()
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))
    bias = [model[0].bias, model[2].bias]

    def step(idx):
        mse = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        l1 = model(x[idx]).sub(y[idx]).abs().mean()
        return {"loss": mse + 0.1 * l1, "mse": mse, "l1": l1, "close": (model(x[idx]) - y[idx]).abs().lt(1).float().mean()}

    def evaluate():
        return {"mse": float(torch.nn.functional.mse_loss(model(x), y)), "mse_zero": float(y.pow(2).mean())}

    collate = torch.tensor
    if cfg.by_hand:
        hyper = Hyper.of(cfg)
        batches = EpochBatches(list(range(cfg.rows)), cfg.batch_size, ctx.config.run.seed, collate)
        total = batches.per_epoch * cfg.epochs
        rest = [p for p in model.parameters() if all(p is not q for q in bias)]
        opt = torch.optim.AdamW([{"params": rest, "weight_decay": hyper.weight_decay}, {"params": bias, "weight_decay": 0.0}], lr=cfg.lr)
        fit(ctx, Stage("fit", model, opt, batches, cfg.epochs, step,
                       lambda s: warmup_cosine(s, max_lr=cfg.lr, warmup=cfg.warmup, total=total, min_ratio=cfg.min_lr_ratio),
                       evaluate=evaluate, grad_clip=cfg.grad_clip, metrics=("close",)))
    else:
        train_stage(ctx, "fit", model, list(range(cfg.rows)), collate, step, Hyper.of(cfg), title="Kit test", evaluate=evaluate,
                    summary=lambda ev: f"MSE {ev['mse']:.3f} (predicting 0: {ev['mse_zero']:.3f})", metrics=("close",),
                    shown={"close": "Close"}, labels={"mse": "M"}, no_decay=bias, about="two layers")
    ctx.mark_stage_done("fit")


@hookimpl
def register_phases(register):
    register(PhaseSpec("kittest", "a stage through the phase kit", run_kit_phase, KitConfig,
                       deliverables=(Deliverable("fit/mse", "<", 100.0, baselines=("fit/mse_zero",)),)))


@pytest.fixture
def plugins():
    return load_plugins(extra=[("kittest", sys.modules[__name__])], refresh=True)


def run(tmp_path, plugins, *overrides):
    runs = tmp_path / "runs"
    code = execute(RunRequest(phase="kittest", overrides=("run.log_every=1", *overrides), runs_dir=str(runs), progress="plain"),
                   plugins=plugins)
    assert code == 0
    (run_dir,) = list_run_dirs(runs)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return (run_dir / "stdout.log").read_text(), [{k: r[k] for k in ("step", "losses", "lr", "close")} for r in records]


def test_a_kit_stage_trains_exactly_as_the_same_stage_built_by_hand(tmp_path, plugins):
    log, kit = run(tmp_path / "kit", plugins)
    _, hand = run(tmp_path / "hand", plugins, "by_hand=true")
    assert kit == hand and len(kit) == 10  # 40 rows / 8 = 5 steps per epoch, 2 epochs
    assert "=== Kit test ===\nParams:  49 (two layers)\nSteps:   10 (5/epoch)" in log
    step = re.search(r"^\[fit\] \[Epoch 1/2\] Step 1/5 \| Loss: (\d+\.\d{4}) \(M: \d+\.\d{4} l1: \d+\.\d{4}\) \| "
                     r"Close: \d+\.\d{2}% \| LR: 1\.7e-2 \| [\d.]+ samples/sec$", log, re.M)
    assert step and float(step.group(1)) == pytest.approx(kit[0]["losses"]["loss"], abs=1e-4)
    assert re.search(r"^\[fit\] \[Epoch 2/2\] Complete \| Train Loss: \d+\.\d{4} \(M: \d+\.\d{4} l1: \d+\.\d{4}\) \| "
                     r"MSE \d+\.\d{3} \(predicting 0: \d+\.\d{3}\) \| Time: [\d.]+s$", log, re.M)


def test_hyper_reads_the_usual_names_and_takes_others():
    cfg = KitConfig()
    assert Hyper.of(cfg) == Hyper(2, 8, 0.05, 3, 0.1, 0.01, 1.0)
    assert Hyper.of(cfg, epochs=5, lr=1e-3) == Hyper(5, 8, 1e-3, 3, 0.1, 0.01, 1.0)


def test_optimizer_groups():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    hyper = Hyper(1, 1, 0.1, 0, 0.01, 0.05, 0.0)
    (one,) = make_optimizer(model, hyper).param_groups
    assert len(one["params"]) == 4 and one["weight_decay"] == 0.05
    two = make_optimizer(model, hyper, groups=[model[1], model[0]]).param_groups
    assert [g["params"] for g in two] == [list(model[1].parameters()), list(model[0].parameters())]
    decay, none = make_optimizer(model, hyper, no_decay=[model[0].bias]).param_groups
    assert len(decay["params"]) == 3 and decay["weight_decay"] == 0.05
    assert none["params"] == [model[0].bias] and none["weight_decay"] == 0.0


def test_lines_show_every_loss_term_and_the_chosen_measurements():
    lines = Lines("", 10, {"contrastive": "C", "role": "R"}, {}, ("role_acc",), 3, None)
    info = {"epoch": 1, "epochs": 10, "batch": 1, "per_epoch": 700, "losses": {"loss": 4.2311, "contrastive": 3.8921, "role": 4.3779},
            "metrics": {"role_acc": 0.5}, "lr": 2.5e-4, "samples_per_sec": 45.21}
    assert lines.progress(info) == "[Epoch 1/10] Step 1/700 | Loss: 4.231 (C: 3.892 R: 4.378) | LR: 2.5e-4 | 45.2 samples/sec"
    means = {"loss": 1.0, "contrastive": 2.0, "role": 3.0, "role_acc": 0.5}
    assert lines.epoch(1, means, {"mse": 0.25}, 1.25) == "[Epoch 1/10] Complete | Train Loss: 1.000 (C: 2.000 R: 3.000) | mse 0.25 | Time: 1.2s"
    tagged = Lines("[decoder] ", 3, {}, {"token_acc": "Acc"}, ("token_acc",), 4, lambda ev: f"Valid Acc: {ev['acc']:.2%}")
    info = {**info, "losses": {"loss": 2.0}, "metrics": {"token_acc": 0.1234}}
    assert tagged.progress(info) == "[decoder] [Epoch 1/10] Step 1/700 | Loss: 2.0000 | Acc: 12.34% | LR: 2.5e-4 | 45.2 samples/sec"
    assert tagged.epoch(3, {"loss": 2.0, "token_acc": 0.1}, {"acc": 0.5}, 3.0) == "[decoder] [Epoch 3/3] Complete | Train Loss: 2.0000 | Valid Acc: 50.00% | Time: 3.0s"
    assert fmt_lr(2.5e-4) == "2.5e-4" and fmt_lr(0.0123) == "1.2e-2"
