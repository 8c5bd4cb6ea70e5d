"""FSDP2 under the [hardware] options, in this process (a gloo group of one: the parameters are DTensors and
every FSDP hook runs, without the cost of two processes; the world-2 runs are in test_distributed.py):
micro-batches reduce once per step and add up to the unsharded gradient, fp16's scaler unscales sharded
and replicated gradients together, auto batch sizing measures a sharded model, and torch.compile traces it."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist

from voltx.train import hardware
from voltx.train.batches import EpochBatches
from voltx.train.input_pipeline import StageInput
from voltx.train.precision import Precision
from voltx.train.sharding import local, shard_stage, state_bytes


@pytest.fixture
def world_of_one(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _data():
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(0))
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def _pair(compute_dtype=None):
    """A model and its copy with the first layer sharded, each with its AdamW."""
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    sharded = copy.deepcopy(plain)
    opts = [torch.optim.AdamW(m.parameters(), lr=0.01) for m in (plain, sharded)]
    shard_stage(sharded, opts[1], ("0",), compute_dtype)
    return (plain, opts[0]), (sharded, opts[1])


def _micro_batches(parts: int):
    feed = StageInput(EpochBatches(list(range(12)), 12, 0, torch.tensor), torch.device("cpu"), micro=parts)
    (_, batch), *_ = feed.iterate(0)
    return batch


def test_micro_batches_reduce_once_per_step_and_add_up_to_the_unsharded_gradient(world_of_one):
    (plain, _), (sharded, _) = _pair()
    x, y = _data()
    reduced_before = []

    def step_of(model):
        def step(idx):
            if model is sharded:  # a reduce-scatter leaves the sharded gradient on the parameter
                reduced_before.append(sharded[0].weight.grad is not None)
            return {"loss": torch.nn.functional.mse_loss(model(x[idx]), y[idx])}
        return step

    Precision("fp32", torch.device("cpu")).forward_backward(step_of(plain), _micro_batches(3))
    Precision("fp32", torch.device("cpu"), [sharded[0]]).forward_backward(step_of(sharded), _micro_batches(3))
    assert reduced_before == [False, False, False]  # no reduce-scatter before the last part's backward
    for (name, a), b in zip(plain.named_parameters(), sharded.parameters()):
        torch.testing.assert_close(local(b.grad), a.grad, rtol=1e-6, atol=1e-7, msg=name)


def test_fp16_scaler_unscales_sharded_and_replicated_gradients_together(world_of_one):
    (plain, plain_opt), (sharded, sharded_opt) = _pair()
    x, y = _data()
    scalers = []
    for model, opt, amp in ((plain, plain_opt, Precision("fp16", torch.device("cpu"))),
                            (sharded, sharded_opt, Precision("fp16", torch.device("cpu"), [sharded[0]]))):
        for _ in range(2):  # the first step overflows fp16 at the initial scale and is skipped; the second steps
            opt.zero_grad(set_to_none=True)
            amp.forward_backward(lambda idx, m=model: {"loss": torch.nn.functional.mse_loss(m(x[idx]), y[idx])}, torch.arange(12))
            amp.unscale(opt)  # torch's GradScaler: "got mixed torch.Tensor and DTensor"
            amp.step(opt)
        scalers.append(amp.state()["scaler"])
    assert scalers[0] == scalers[1] and scalers[0]["scale"] < 65536.0  # the same inf found, the same back-off
    for (name, a), b in zip(plain.named_parameters(), sharded.parameters()):
        torch.testing.assert_close(local(b.grad), a.grad, msg=name)
        torch.testing.assert_close(local(b.detach()), a.detach(), msg=name)


def test_bf16_gathers_in_bf16_and_keeps_fp32_masters(world_of_one):
    _, (sharded, opt) = _pair(torch.bfloat16)
    x, y = _data()
    amp = Precision("bf16", torch.device("cpu"), [sharded[0]])
    out = amp.forward_backward(lambda idx: {"loss": torch.nn.functional.mse_loss(sharded(x[idx]).float(), y[idx])}, _micro_batches(2))
    amp.step(opt)
    assert torch.isfinite(out["loss"])
    assert {local(p).dtype for p in sharded.parameters()} == {torch.float32}
    assert {local(p.grad).dtype for p in sharded.parameters()} == {torch.float32}  # reduced and accumulated in fp32


def test_auto_batch_measures_a_sharded_model_as_the_unsharded_one(world_of_one):
    (plain, _), (sharded, _) = _pair()
    x, y = _data()
    used = [hardware.activation_bytes(lambda idx, m=m: {"loss": torch.nn.functional.mse_loss(m(x[idx]), y[idx])}, torch.arange(12), m,
                                      Precision("fp32", torch.device("cpu")).autocast) for m in (plain, sharded)]
    assert used[0] == used[1] > 0  # the gathered weights FSDP saves for backward are no activations
    params = 4 * 16 + 16 + 16 + 1
    assert state_bytes(sharded.parameters(), accumulating=False) == 3 * 4 * params  # one process holds every shard


def test_compile_traces_through_the_sharded_module(world_of_one, monkeypatch):
    monkeypatch.setattr(hardware, "COMPILE_BACKEND", "eager")  # a real dynamo trace, no C compiler needed
    (eager, _), (sharded, _) = _pair()
    x, y = _data()
    said, fallbacks = [], []
    assert hardware.compile_model(sharded, said.append, fallbacks.append) == ["model"]
    for model in (sharded, eager):
        torch.nn.functional.mse_loss(model(x), y).backward()
    assert said == [] and fallbacks == []  # compiled, not fallen back
    for a, b in zip(eager.parameters(), sharded.parameters()):
        torch.testing.assert_close(local(b.grad), a.grad)
