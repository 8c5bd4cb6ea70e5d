"""``hardware.strategy = "fsdp"``: the large modules a stage names are sharded with FSDP2.

A stage names the modules worth sharding (``Stage.shard``, e.g. F3's ``("vfn",)``: the ScaledVfn,
51.7M parameters at F3's defaults, 200M/500M at Phase S's sizes); each is sharded with
``torch.distributed.fsdp.fully_shard`` (FSDP2: every parameter a DTensor split on dim 0 across
the ranks), its blocks first when it lists them (``fsdp_units()``: one block's weights gathered at a
time). The rest of the stage's model (attention, heads) stays replicated and data parallel, as
under ``ddp``. The rules, each written once here:

- refused (exit 78, before the run exists when started by ``voltx run``) for a phase that names no
  module to shard, and for modules under ``hardware.fsdp_min_parameters`` in all (:func:`check`);
- the phase calls a sharded module through ``module(...)`` (its forward hooks all-gather it), so
  every rank must run every forward of it: under fsdp each rank evaluates too (the same whole
  set; rank 0's figures are recorded, as under ddp);
- checkpoints hold full tensors gathered from the shards (:func:`full_tensors`): the one
  checkpoint format of every strategy, written by rank 0 with the committed marker, loadable in
  one process; a resume splits them again (:func:`load_model`, :func:`shard_optimizer_state`),
  to the same shards bit for bit;
- gradient clipping over sharded and replicated gradients together (:func:`clip_gradients`);
  an optimizer group that holds both runs its per-parameter loop (``foreach = False``): torch's
  fused multi-tensor kernels refuse a list that mixes DTensors and plain tensors;
- gradient accumulation (micro-batches): every micro-batch but the last runs its backward with
  ``set_requires_gradient_sync(False)`` (FSDP1's ``no_sync``), so a step reduce-scatters once, as
  the ddp path all-reduces once (:func:`gradient_sync`). FSDP then keeps each unit's gradient whole
  until the last micro-batch; the parameters are still resharded after each backward (FSDP2's default):
  keeping them gathered too would save one all-gather per unit and micro-batch but hold the whole
  module's weights on every rank, which is what sharding is for;
- ``precision = "bf16"`` (or ``"fp16"``): a ``MixedPrecisionPolicy`` gathers the shards in that dtype
  for compute and reduces the gradients in fp32; the sharded parameters, the optimizer and the
  checkpoints stay fp32 masters. Gloo all-gathers bfloat16 and float16 (torch 2.13), so this runs
  on the CPU too. fp16's loss scaler is :func:`grad_scaler`'s: each rank sees an inf only in its
  own shards, so the found-inf flag is all-reduced and every rank skips the same steps;
- auto batch sizing counts what a rank holds (:func:`state_bytes`): a sharded parameter's
  moments and reduced gradient are its local shard.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from typing import Any, Iterable

import torch

from voltx.errors import ConfigError


def check(modules: dict[str, int], world: int, min_params: int, where: str) -> None:
    """Refuse sharding ``modules`` (name -> parameters) over ``world`` ranks when there is none or they
    are too small; ``where`` names the phase or stage in the message."""
    if not modules:
        raise ConfigError(f"hardware.strategy = \"fsdp\" but {where} names no module to shard (only phases with a large "
                          "VFN do: f3, and Phase S); use hardware.strategy=ddp (the default), which keeps a whole replica on each process.")
    total = sum(modules.values())
    if total < min_params:
        named = ", ".join(f"{k} {v:,}" for k, v in modules.items())
        raise ConfigError(f"hardware.strategy = \"fsdp\" but the modules {where} shards have only {total:,} parameters ({named}), "
                          f"fewer than hardware.fsdp_min_parameters = {min_params:,}: sharding them over {world} processes costs more "
                          "communication than it saves memory. Use hardware.strategy=ddp (the default).")


def shard_stage(model: torch.nn.Module, optimizer: torch.optim.Optimizer, names: tuple[str, ...],
                compute_dtype: torch.dtype | None = None) -> dict[str, int]:
    """Shard ``model``'s modules ``names`` in place and point ``optimizer`` (built before, still
    without state) at the sharded parameters; returns each module's parameter count. With
    ``compute_dtype`` (bf16, fp16) the shards are gathered in it and the gradients reduced in fp32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32 if compute_dtype else None)

    modules = dict(model.named_modules())
    counts = {name: sum(p.numel() for p in modules[name].parameters()) for name in names}
    before = dict(model.named_parameters())
    # FSDP2 warns at every forward whose output is a view (a Linear over [B, S, D]): an in-place op on
    # it would skip the backward all-gather. Stage.shard's contract is out-of-place use (RAR and F3's
    # terms are: their fsdp and ddp weights agree to 3e-8), so the warning only adds noise to the log.
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
    for name in names:
        for unit in getattr(modules[name], "fsdp_units", lambda: [])():
            fully_shard(unit, mp_policy=policy)
        fully_shard(modules[name], mp_policy=policy)
    after = dict(model.named_parameters())  # fully_shard replaces each parameter by a DTensor one
    swapped = {id(before[k]): after[k] for k in before}
    for group in optimizer.param_groups:
        group["params"] = [swapped.get(id(p), p) for p in group["params"]]
        if len({is_sharded(p) for p in group["params"]}) > 1:
            group["foreach"] = False  # module docstring: mixed lists
    return counts


def is_sharded(t: Any) -> bool:
    """Whether ``t`` is a DTensor: a parameter (or its gradient) that FSDP2 split across the ranks."""
    if not torch.distributed.is_available():  # a torch build without distributed has no DTensor
        return False
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def local(t: Any) -> Any:
    """This rank's part of ``t``: a DTensor's local shard, any other tensor itself."""
    return t.to_local() if is_sharded(t) else t


def state_bytes(params: Iterable[torch.Tensor], accumulating: bool) -> int:
    """Bytes this rank still allocates for ``params``' gradients and two AdamW moments. A sharded
    parameter's moments and reduced gradient are its local shard; its gradient is whole while
    micro-batches accumulate without a reduce-scatter (:func:`gradient_sync`)."""
    total = 0
    for p in params:
        own, whole = local(p).numel() * p.element_size(), p.numel() * p.element_size()
        total += 2 * own + (whole if accumulating else own)
    return total


def gradient_sync(modules: Iterable[torch.nn.Module], on: bool) -> None:
    """Whether the next backward of the sharded ``modules`` reduce-scatters their gradients (off:
    they accumulate, whole, for a later micro-batch's backward to reduce)."""
    for module in modules:
        module.set_requires_gradient_sync(on)


def grad_scaler(device: torch.device):
    """fp16's loss scaler for a stage with sharded modules."""
    from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

    class ShardedScaler(ShardedGradScaler):
        """torch's FSDP scaler (found-inf all-reduced over the ranks), unscaling each DTensor gradient's
        local shard: torch's unscale kernel refuses a list that mixes DTensors and plain tensors."""

        def _unscale_grads_(self, optimizer, inv_scale, found_inf, allow_fp16=True):  # the hook ShardedGradScaler overrides too
            view = SimpleNamespace(param_groups=[{"params": [SimpleNamespace(grad=local(p.grad)) for p in g["params"] if p.grad is not None]}
                                                 for g in optimizer.param_groups])
            return super()._unscale_grads_(view, inv_scale, found_inf, allow_fp16)

    return ShardedScaler(device.type)


def full_tensors(tensors: dict[str, Any]) -> dict[str, Any]:
    """``tensors`` with every DTensor gathered whole (a collective: every rank calls it, same keys, same order)."""
    return {k: v.full_tensor() if is_sharded(v) else v for k, v in tensors.items()}


def _like(full: torch.Tensor, current: Any) -> Any:
    """``full`` split as ``current`` is (each rank keeps its own chunk; no communication)."""
    if not is_sharded(current) or is_sharded(full):
        return full
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(current.device), current.device_mesh, current.placements, src_data_rank=None)


def load_model(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load a checkpoint's full tensors into ``model``, sharded or not."""
    current = model.state_dict()
    model.load_state_dict({k: _like(v, current[k]) if k in current else v for k, v in tensors.items()})


def shard_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """After loading full optimizer state: each sharded parameter's moments split as the parameter is."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            if is_sharded(p) and p in optimizer.state:
                slot = optimizer.state[p]
                for key, value in slot.items():
                    if isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(p.shape):
                        slot[key] = _like(value, p)


def clip_gradients(params: Iterable[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """Clip the gradients to a total norm of ``max_norm``; returns the norm before clipping.
    Without sharded gradients this is ``torch.nn.utils.clip_grad_norm_`` itself."""
    params = [p for p in params if p.grad is not None]
    sharded = [p for p in params if is_sharded(p.grad)]
    if not sharded:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    from torch.nn.utils import clip_grads_with_norm_, get_total_norm

    plain = [p for p in params if not is_sharded(p.grad)]
    parts = [get_total_norm([p.grad for p in sharded]).full_tensor()]  # the norm over every rank's shard
    if plain:
        parts.append(get_total_norm([p.grad for p in plain]).to(parts[0].device))
    total = torch.linalg.vector_norm(torch.stack(parts))
    for group in (sharded, plain):
        if group:
            clip_grads_with_norm_(group, max_norm, total)
    return total


def apply_strategy(ctx, stage, job) -> list[torch.nn.Module]:
    """Shard ``stage``'s named modules when the run asks for fsdp under several processes (before
    a resume loads its checkpoint); returns the sharded modules (none: the stage trains data parallel)."""
    hw = ctx.config.hardware
    if hw.strategy != "fsdp":
        return []
    if job is None:
        if stage.shard:
            ctx.say(f"[{stage.name}] hardware.strategy = fsdp in one process: nothing to shard across; the model trains whole")
        return []
    if not stage.shard:
        ctx.say(f"[{stage.name}] hardware.strategy = fsdp: this stage names no module to shard; it trains data parallel (ddp)")
        return []
    modules = dict(stage.model.named_modules())
    missing = [n for n in stage.shard if n not in modules]
    if missing:
        raise ValueError(f"stage {stage.name}: Stage.shard names {missing}, not modules of its model")
    check({n: sum(p.numel() for p in modules[n].parameters()) for n in stage.shard}, job.world, hw.fsdp_min_parameters,
          f"stage {stage.name}")
    job.sync_parameters(stage.model)  # the shards are cut from rank 0's weights
    from voltx.train.hardware import record
    from voltx.train.precision import DTYPES

    compute = DTYPES.get(hw.precision)
    counts = shard_stage(stage.model, stage.optimizer, stage.shard, compute)
    named = ", ".join(f"{k} ({v:,} parameters)" for k, v in counts.items())
    mixed = f", gathered in {hw.precision}, gradients reduced in fp32, fp32 masters" if compute else ""
    record(ctx.run, stage.name, ctx.global_step, strategy=f"fsdp: {named} sharded over {job.world} processes, the rest replicated{mixed}")
    ctx.say(f"[{stage.name}] FSDP2: {named} sharded over {job.world} processes{mixed}; the rest of the model replicated (ddp)")
    return [modules[n] for n in stage.shard]
