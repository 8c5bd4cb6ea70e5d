"""The [hardware] options on the CPU: bf16 and fp16 autocast (the scaler's state checkpointed),
background collation and micro-batches with exact resume, auto batch sizing from measured free
memory, torch.compile's fallback, activation checkpointing, TF32 recorded, and bad values refused."""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

from voltx import hookimpl
from voltx.engine.vfn import ScaledVfn
from voltx.errors import EXIT_CONFIG, EXIT_PREEMPTED, EXIT_PREFLIGHT
from voltx.plugin_specs import PhaseSpec
from voltx.plugins import load_plugins
from voltx.runs.checkpoints import newest_intact
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.train import hardware
from voltx.train.batches import EpochBatches
from voltx.train.hardware import enable_activation_checkpointing
from voltx.train.input_pipeline import StageInput
from voltx.train.precision import Precision
from voltx.train.runner import RunRequest, execute


@dataclass
class HwConfig:
    rows: int = 48
    epochs: int = 2
    batch_size: int = 8
    lr: float = 0.05
    warmup: int = 2
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    stop_at: int = -1
    """Send this process SIGUSR1 during this global step (a preemption mid-epoch)."""


def _data():
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(0))
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])


def run_hw_phase(ctx):
    from voltx.train.kit import Hyper, train_stage

    cfg = ctx.settings
    x, y = (t.to(ctx.device) for t in _data())
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)).to(ctx.device)

    def step(idx):
        if ctx.global_step + 1 == cfg.stop_at and not ctx.stop.requested:
            os.kill(os.getpid(), signal.SIGUSR1)
        return {"loss": torch.nn.functional.mse_loss(model(x[idx]).float(), y[idx])}

    train_stage(ctx, "fit", model, list(range(cfg.rows)), torch.tensor, step, Hyper.of(cfg), title="hw test",
                background_collate=True)
    ctx.save_artifact("hw.safetensors", model.state_dict())
    ctx.mark_stage_done("fit")


@hookimpl
def register_phases(register):
    register(PhaseSpec("hwtest", "the [hardware] options", run_hw_phase, HwConfig, artifacts=("hw.safetensors",)))


@pytest.fixture
def plugins():
    return load_plugins(extra=[("hwtest", sys.modules[__name__])], refresh=True)


def execute_run(runs, plugins, *overrides, resume=None) -> int:
    """A run of hwtest under ``runs`` (its artifacts published beside it); a resume takes the run's saved config."""
    overrides = () if resume else ("run.log_every=1", "run.telemetry_interval=0", f"paths.checkpoints_dir={runs}/published", *overrides)
    return execute(RunRequest(phase="hwtest", overrides=overrides, runs_dir=str(runs), progress="plain", resume=resume),
                   plugins=plugins, restore_signals=True)


def finished(runs, plugins, *overrides):
    assert execute_run(runs, plugins, *overrides) == 0
    (run_dir,) = list_run_dirs(runs)
    return run_dir


def losses(run_dir) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["losses"]["loss"] for r in records}  # a resumed run's re-logged steps overwrite


def weights(run_dir):
    return load_file(run_dir / "artifacts" / "hw.safetensors")


def test_prefetched_micro_batched_fp16_run_stopped_and_resumed_is_bitwise_identical(tmp_path, plugins):
    """Background collation 2 ahead, batches of 8 as 3 micro-batches, fp16 with a loss scaler (on
    the CPU): a run preempted mid-epoch (its collator holding batches it never trained on) and
    resumed ends bitwise equal to an uninterrupted one, the scaler's state in its checkpoint."""
    settings = ("hardware.precision=fp16", "hardware.grad_accum=3", "hardware.prefetch=2")
    whole = finished(tmp_path / "whole", plugins, *settings)
    runs = tmp_path / "stopped"
    assert execute_run(runs, plugins, *settings, "stop_at=4") == EXIT_PREEMPTED
    (run_dir,) = list_run_dirs(runs)
    checkpoint, _ = newest_intact(run_dir / "checkpoints")
    assert checkpoint.state["batch"] == 4 and checkpoint.state["micro_batches"] == 3
    assert set(checkpoint.state["scaler"]) >= {"scale", "_growth_tracker"}
    assert execute_run(runs, plugins, resume=str(run_dir)) == 0
    assert losses(run_dir) == losses(whole) and len(losses(whole)) == 12
    assert all(torch.equal(a, b) for a, b in zip(weights(run_dir).values(), weights(whole).values()))
    record = load_manifest(run_dir).raw["hardware"]
    assert record["tf32"] == "off (no CUDA device: cpu)"
    assert record["fit"] == {"precision": "fp16", "micro_batches": 3, "input": "background thread, 2 ahead"}
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    (fed,) = [e for e in events if e["kind"] == "input"]  # the resumed attempt's: the first one was preempted
    assert fed["batches"] == 8  # 12 steps, 4 of them before the stop


def test_bf16_autocast_runs_on_the_cpu_and_changes_the_numbers(tmp_path, plugins):
    with Precision("bf16", torch.device("cpu")).autocast():
        assert torch.nn.Linear(4, 2)(torch.ones(3, 4)).dtype == torch.bfloat16
    bf16 = losses(finished(tmp_path / "bf16", plugins, "hardware.precision=bf16", "epochs=1"))
    fp32 = losses(finished(tmp_path / "fp32", plugins, "epochs=1"))
    assert bf16.keys() == fp32.keys() and bf16 != fp32
    assert bf16 == pytest.approx(fp32, rel=0.05)


def test_micro_batches_accumulate_to_the_whole_batch_gradient():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, y = _data()
    batches = EpochBatches(list(range(48)), 10, 0, torch.tensor)

    def step(idx):
        return {"loss": torch.nn.functional.mse_loss(model(x[idx]), y[idx]), "batch_size": torch.tensor(len(idx))}

    grads = {}
    for micro in (1, 4):
        feed = StageInput(batches, torch.device("cpu"), micro=micro)
        (_, batch), *_ = feed.iterate(0)
        model.zero_grad()
        out = Precision("fp32", torch.device("cpu")).forward_backward(step, batch)
        grads[micro] = ([p.grad.clone() for p in model.parameters()], float(out["loss"].detach()), int(out["batch_size"]))
    assert grads[4][1] == pytest.approx(grads[1][1], rel=1e-6) and grads[4][2] == grads[1][2] == 10
    for whole, parts in zip(grads[1][0], grads[4][0]):
        torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-7)


def test_auto_batch_splits_by_measured_free_memory(tmp_path, plugins, monkeypatch):
    measured = {}
    real = hardware.activation_bytes

    def spy(*args):
        measured["bytes"] = real(*args)
        return measured["bytes"]

    monkeypatch.setattr(hardware, "activation_bytes", spy)
    # free memory for 3 samples' activations (after the gradients and moments still to come): 8 -> 3 parts of <= 3
    params = 4 * (4 * 16 + 16 + 16 + 1)
    monkeypatch.setattr(hardware, "free_memory", lambda device: (int((3 * params + 3.5 * measured["bytes"] / 8) / hardware.MEMORY_SHARE), "test"))
    run_dir = finished(tmp_path / "auto", plugins, "hardware.auto_batch=true", "epochs=1")
    split = load_manifest(run_dir).raw["hardware"]["fit"]
    assert split["micro_batches"] == 3 and split["auto_batch"]["micro_batch_size"] == 3 and split["auto_batch"]["measured_on"] == "test"
    assert "[fit] auto batch: 8 samples as 3 micro-batch(es) of up to 3" in (run_dir / "stdout.log").read_text()
    monkeypatch.setattr(hardware, "free_memory", lambda device: (1024, "host RAM (psutil available)"))
    assert execute_run(tmp_path / "tiny", plugins, "hardware.auto_batch=true") == EXIT_PREFLIGHT


def test_compile_failure_falls_back_to_eager_with_one_line(tmp_path, plugins, monkeypatch):
    calls = []

    def broken_compile(fn, **kwargs):
        def compiled(*args, **kw):
            calls.append(1)
            raise RuntimeError("InductorError: no working C compiler found\ndetails ...")
        return compiled

    monkeypatch.setattr(torch, "compile", broken_compile)
    compiled_run = finished(tmp_path / "compiled", plugins, "hardware.compile=true", "epochs=1")
    log = (compiled_run / "stdout.log").read_text()
    assert log.count("torch.compile failed for model (RuntimeError: InductorError: no working C compiler found); "
                     "training goes on uncompiled") == 1 and calls == [1]
    assert load_manifest(compiled_run).raw["hardware"]["fit"]["compile"].startswith("fallback to eager (model: RuntimeError")
    assert losses(compiled_run) == losses(finished(tmp_path / "eager", plugins, "epochs=1"))


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    vfn = ScaledVfn(hidden=32, blocks=3, time_freqs=8)
    x, t = torch.randn(2, 16, 256), torch.rand(2, 16)
    grads = []
    for recompute in (False, True):
        vfn.zero_grad()
        vfn.checkpoint_blocks = recompute
        vfn(x, t).square().mean().backward()
        grads.append([p.grad.clone() for p in vfn.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    assert enable_activation_checkpointing(torch.nn.ModuleDict({"a": ScaledVfn(hidden=8, blocks=1), "b": torch.nn.Linear(2, 2)})) == 1


@pytest.mark.parametrize("override, expected", [
    ("hardware.grad_accum=0", "hardware.grad_accum must be at least 1, got 0"),
    ("hardware.prefetch=-1", "hardware.prefetch must be at least 0, got -1"),
    ("hardware.precision=fp8", "hardware.precision must be one of 'fp32', 'bf16', 'fp16', got 'fp8'"),
])
def test_bad_hardware_values_are_refused_before_anything_is_written(tmp_path, plugins, override, expected):
    from voltx.errors import ConfigError

    with pytest.raises(ConfigError, match=expected) as err:
        execute_run(tmp_path / "runs", plugins, override)
    assert err.value.exit_code == EXIT_CONFIG and not (tmp_path / "runs").exists()


def test_auto_batch_and_grad_accum_together_are_refused(tmp_path, plugins):
    from voltx.errors import ConfigError

    with pytest.raises(ConfigError, match="set one of them"):
        execute_run(tmp_path / "runs", plugins, "hardware.auto_batch=true", "hardware.grad_accum=2")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_on_cuda_autocast_pinned_prefetch_auto_batch_and_tf32(tmp_path, plugins, precision):
    run_dir = finished(tmp_path / precision, plugins, "hardware.device=cuda", f"hardware.precision={precision}",
                       "hardware.auto_batch=true")
    record = load_manifest(run_dir).raw["hardware"]
    major, _ = torch.cuda.get_device_capability()
    assert record["tf32"] == "on" if major >= 8 else record["tf32"].startswith("off (compute capability")
    assert record["fit"]["input"] == "background thread, 2 ahead" and record["fit"]["auto_batch"]["measured_on"].startswith("GPU cuda")
    assert record["fit"]["micro_batches"] == 1  # 8 samples of a 97-parameter model fit any GPU
    checkpoint, _ = newest_intact(run_dir / "checkpoints")
    assert ("scaler" in checkpoint.state) == (precision == "fp16")
