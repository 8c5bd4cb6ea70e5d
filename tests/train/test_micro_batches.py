"""Gradient accumulation in the shared loop: a collate that returns ``MicroBatches`` gets one
forward and backward per micro-batch, in turn (only one micro-batch's activations alive at a
time), and one optimizer step equal, within float rounding, to the same step on one batch of
all its rows."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

import pytest
import torch

from voltx import hookimpl
from voltx.plugin_specs import PhaseSpec
from voltx.plugins import load_plugins
from voltx.runs.layout import list_run_dirs
from voltx.train.runner import RunRequest, execute


@dataclass
class AccumConfig:
    micro: int = 0
    """Rows per micro-batch (0: the whole batch at once)."""
    batch_size: int = 8
    epochs: int = 2


ORDER: list[str] = []
"""forward / backward, in the order the loop ran them (the last run's)."""


def run_accum(ctx):
    from voltx.train.batches import MicroBatches
    from voltx.train.kit import Hyper, train_stage

    cfg = ctx.settings
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    model[0].register_forward_hook(lambda *a: ORDER.append("forward"))
    model[0].weight.register_hook(lambda g: ORDER.append("backward"))
    ORDER.clear()

    def collate(idx):
        rows = torch.tensor(idx)
        if not cfg.micro:
            return {"rows": rows, "of": len(rows)}
        return MicroBatches({"rows": part, "of": len(rows)} for part in rows.split(cfg.micro))

    def step(batch):  # the squared error summed over these rows, over the step's rows: a share of the mean
        err = (model(x[batch["rows"]]) - y[batch["rows"]]).pow(2).sum() / batch["of"]
        return {"loss": err, "rows": torch.tensor(float(len(batch["rows"])))}

    hyper = Hyper(cfg.epochs, cfg.batch_size, 0.05, 0, 1.0, 0.0, 0.0)
    train_stage(ctx, "fit", model, list(range(32)), collate, step, hyper, title="accumulation", metrics=("rows",))
    ctx.save_artifact("accum.safetensors", model.state_dict())


@hookimpl
def register_phases(register):
    register(PhaseSpec("accum", "micro-batches through the shared loop", run_accum, AccumConfig))


def trained(tmp_path, **overrides):
    plugins = load_plugins(extra=[("accum", sys.modules[__name__])], refresh=True)
    runs = tmp_path / "runs"
    req = RunRequest(phase="accum", runs_dir=str(runs), overrides={"run.log_every": 1, **overrides}, progress="plain")
    assert execute(req, plugins=plugins, restore_signals=True) == 0
    (run_dir,) = list_run_dirs(runs)
    from safetensors.torch import load_file

    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return load_file(run_dir / "artifacts" / "accum.safetensors"), logged, list(ORDER)


def test_micro_batches_backward_in_turn_and_equal_the_whole_batch(tmp_path):
    whole, whole_log, whole_order = trained(tmp_path / "whole")
    accum, accum_log, accum_order = trained(tmp_path / "accum", micro=2)
    steps = 32 // 8 * 2
    assert whole_order == ["forward", "backward"] * steps
    assert accum_order == ["forward", "backward"] * (4 * steps)  # never two forwards before a backward
    assert [r["rows"] for r in accum_log] == [8.0] * steps  # the terms add up to the whole step's
    for a, b in zip(accum_log, whole_log):
        assert a["losses"]["loss"] == pytest.approx(b["losses"]["loss"], rel=1e-5)
    assert all(torch.allclose(accum[k], whole[k], atol=1e-6) for k in whole)
