"""The ``[hardware]`` options applied to a run and to each stage it trains.

Per run (:func:`apply_tf32`): TF32 matmuls on Ampere or newer. Per stage (:func:`prepare_stage`,
called by the loop before step 1): ``compile`` (``torch.compile`` with a fallback to eager and
one line saying why), ``activation_checkpointing`` (every module with a ``checkpoint_blocks``
switch, :class:`voltx.engine.vfn.ScaledVfn`), and the micro-batch split of each batch:
``grad_accum`` as given, or with ``auto_batch`` measured (:func:`measure_split`). What each
came to is recorded under ``hardware`` in run.json and as a ``hardware`` event.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import psutil
import torch

from voltx.errors import PreflightError
from voltx.train.input_pipeline import StageInput, map_tensors
from voltx.train.sharding import is_sharded, local, state_bytes
from voltx.train.state import capture_rng, restore_rng

GiB = 1024**3
COMPILE_BACKEND = "inductor"
"""torch.compile's backend (tests use "eager": a real trace without a C compiler)."""
MEMORY_SHARE = 0.8
"""The share of measured free memory that activations may take (the allocator's slack, temporaries)."""


def record(run, stage: str | None = None, step: int | None = None, **fields: Any) -> None:
    """Add ``fields`` to run.json's ``hardware`` object (under ``stage`` when given) and log them as a
    ``hardware`` event (at ``step``)."""
    known = dict(run.manifest.get("hardware") or {})
    if stage is None:
        known.update(fields)
    else:
        known[stage] = {**known.get(stage, {}), **fields}
    run.update_manifest(hardware=known)
    run.event("hardware", **({"stage": stage} if stage else {}), **({"step": step} if step is not None else {}), **fields)


def apply_tf32(enabled: bool, device: torch.device) -> str:
    """Allow TF32 matmuls and cuDNN convolutions on Ampere or newer; returns what was done, for run.json."""
    if device.type != "cuda":
        return f"off (no CUDA device: {device.type})"
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        return f"off (compute capability {major}.{minor}; TF32 needs 8.0, Ampere, or newer)"
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    return "on" if enabled else "off (hardware.tf32 = false)"


def enable_activation_checkpointing(model: torch.nn.Module) -> int:
    """Switch on block recomputation in every module of ``model`` that has it; returns how many."""
    found = [m for m in model.modules() if hasattr(m, "checkpoint_blocks")]
    for module in found:
        module.checkpoint_blocks = True
    return len(found)


def compile_model(model: torch.nn.Module, say: Callable[[str], None], on_fallback: Callable[[str], None]) -> list[str]:
    """Compile the forward of ``model`` (or of each child, for a container such as a ModuleDict that
    a step calls part by part); returns their names. State-dict keys are unchanged (only ``forward``
    is wrapped). If a compiled call fails, that module goes back to eager for good: one line says so,
    ``on_fallback`` gets the reason, and the call is made again uncompiled."""
    containers = torch.nn.Module.forward
    targets = [("model", model)] if type(model).forward is not containers else list(model.named_children())
    for name, module in targets:
        _guard(name, module, say, on_fallback)
    return [name for name, _ in targets]


def _guard(name: str, module: torch.nn.Module, say, on_fallback) -> None:
    eager = module.forward
    compiled = torch.compile(eager, backend=COMPILE_BACKEND)

    def forward(*args, **kwargs):
        try:
            return compiled(*args, **kwargs)
        except Exception as exc:  # any compiler failure: the run goes on, slower
            module.forward = eager
            why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}"
            say(f"voltx: torch.compile failed for {name} ({why[:200]}); training goes on uncompiled")
            on_fallback(f"{name}: {why[:200]}")
            return eager(*args, **kwargs)

    module.forward = forward


def activation_bytes(step: Callable[[Any], Any], batch: Any, model: torch.nn.Module, autocast) -> int:
    """Bytes of the tensors autograd keeps for backward in one forward ``step(batch)`` (parameters
    excluded): what a batch adds to memory on top of the weights and optimizer state. Measured the
    same way on any device (saved-tensor hooks), so the CPU and the GPU split batches alike. A module
    sharded with FSDP2 saves its gathered weights, parameters too: they are gathered again in backward."""
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        # read at each pack: FSDP2 swaps a sharded module's parameters for gathered ones during its forward
        params = {local(p).untyped_storage().data_ptr() for p in model.parameters()}
        if storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast():
        out = step(batch)
    del out
    return sum(kept.values())


def free_memory(device: torch.device) -> tuple[int, str]:
    """Free bytes where activations go and what they were measured on."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free, f"GPU {device}"
    return psutil.virtual_memory().available, "host RAM (psutil available)"


def measure_split(step, items: list[int], feed: StageInput, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  autocast, generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """How many micro-batches this process's share of a batch (``items``, its part of the first
    batch: the whole batch in one process) needs to fit free memory, measured on ``items`` collated
    whole (forward only; every RNG restored, so training is unchanged)."""
    batch = feed.batches.collate([feed.batches.items[i] for i in items])
    if feed.prefetch:  # where the pipeline hands the step its batches
        batch = map_tensors(batch, lambda t: t.to(feed.device))
    rng_tensors, rng_meta = capture_rng(generators)
    try:
        used = activation_bytes(step, batch, model, autocast)
    finally:
        restore_rng(rng_tensors, rng_meta, generators)
    share = max(1, len(items))
    per_sample = max(1, used // share)
    free, where = free_memory(feed.device)
    params = list(model.parameters())
    pending = 0 if optimizer.state else state_bytes(params, accumulating=False)  # gradients and AdamW moments, not yet allocated
    fits = (int(free * MEMORY_SHARE) - pending) // per_sample
    if 0 < fits < share and not optimizer.state and any(is_sharded(p) for p in params):
        pending = state_bytes(params, accumulating=True)  # micro-batches: a sharded module's gradients stay whole until the last
        fits = (int(free * MEMORY_SHARE) - pending) // per_sample
    if fits < 1:
        raise PreflightError(
            f"hardware.auto_batch: one sample's activations take {per_sample / 2**20:.1f} MiB and {where} has "
            f"{free / GiB:.2f} GiB free ({pending / GiB:.2f} GiB of it still needed for gradients and optimizer state): "
            "not even one sample fits. Use hardware.activation_checkpointing = true, a smaller model, or a larger machine.")
    parts = max(1, math.ceil(share / fits))
    return {"micro_batches": parts, "micro_batch_size": math.ceil(share / parts), "batch_size": feed.batch_size,
            "per_process": share, "activation_mib_per_sample": round(per_sample / 2**20, 3), "free_memory_gib": round(free / GiB, 3),
            "measured_on": where, "state_bytes": pending}


def prepare_stage(ctx, stage, precision, point, batches) -> StageInput:
    """Apply the stage-level ``[hardware]`` options to ``stage`` and return the input it trains on:
    ``batches`` (this process's share of them under several processes).

    A resumed stage keeps the micro-batch split its checkpoint recorded (a different split would
    round differently, and exact resume compares bits), so ``auto_batch`` measures only at a fresh start."""
    hw = ctx.config.hardware
    feed = StageInput(batches, ctx.device, hw.prefetch if stage.background_collate else 0, hw.grad_accum)
    notes: dict[str, Any] = {"precision": precision.name}
    if hw.activation_checkpointing:
        count = enable_activation_checkpointing(stage.model)
        notes["activation_checkpointing"] = count
        if not count:
            ctx.say(f"[{stage.name}] hardware.activation_checkpointing: no large VFN (ScaledVfn) in this stage; nothing to recompute")
    if hw.compile:
        fallback = lambda why: record(ctx.run, stage.name, ctx.global_step, compile=f"fallback to eager ({why})")  # noqa: E731
        notes["compile"] = "compiled: " + ", ".join(compile_model(stage.model, ctx.say, fallback))
    if point is not None and "micro_batches" in point.state:
        feed.micro = int(point.state["micro_batches"])
    elif hw.auto_batch:
        first = next(batches.indices(0), None)
        if first is not None:
            split = measure_split(stage.step, first[1], feed, stage.model, stage.optimizer, precision.autocast, stage.generators)
            if ctx.job is not None:  # the most any rank needs: under fsdp every rank must run as many backwards
                split["micro_batches"] = ctx.job.most(split["micro_batches"])
                split["micro_batch_size"] = math.ceil(split["per_process"] / split["micro_batches"])
            feed.micro = split["micro_batches"]
            notes["auto_batch"] = split
            each = f" ({split['per_process']} per process)" if ctx.job is not None else ""
            ctx.say(f"[{stage.name}] auto batch: {split['batch_size']} samples{each} as {split['micro_batches']} micro-batch(es) of "
                    f"up to {split['micro_batch_size']} ({split['activation_mib_per_sample']} MiB of activations per sample, "
                    f"{split['free_memory_gib']} GiB free on {split['measured_on']})")
    notes.update(micro_batches=feed.micro, input=f"background thread, {feed.prefetch} ahead" if feed.prefetch else "inline")
    record(ctx.run, stage.name, ctx.global_step, **notes)
    return feed
