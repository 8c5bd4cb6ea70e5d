"""RAR telemetry of the foundation phases (F1's slot filling, F3's reasoning): the per-batch
``rar/*`` metrics, the ``rar`` event the console's RAR tab draws (docs/console.md) and the
per-slot certainty gamma that event reports.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from voltx.engine.rar import RarResult


def rar_summary(result: RarResult, active: Tensor) -> dict[str, float]:
    """Per-batch RAR figures for metrics.jsonl: ``rar/iterations_mean``, ``rar/converged_share``."""
    act = active.bool()
    return {
        "rar/iterations_mean": float(result.total_iterations.float().mean()),
        "rar/converged_share": float((result.converged & act).sum() / act.sum().clamp_min(1)),
    }


def rar_event(ctx, result: RarResult, active: Tensor, gamma: Tensor, max_iterations: int, **fields: Any) -> dict:
    """Write one ``rar`` event (console RAR tab): iterations per query, per-slot converged
    share over the queries where the slot is active, mean certainty gamma per slot."""
    act = active.bool()
    per_slot = act.sum(0).clamp_min(1)
    converged = ((result.converged & act).sum(0) / per_slot).tolist()
    gamma_mean = ((gamma * act).sum(0) / per_slot).clamp(0, 1).tolist()
    event = {
        "iterations": [int(i) for i in result.total_iterations.tolist()],
        "max_iterations": int(max_iterations),
        "slot_converged": [round(float(x), 4) for x in converged],
        "gamma": [round(float(x), 4) for x in gamma_mean],
    }
    ctx.run.event("rar", step=ctx.global_step, **event, **fields)
    return event


def certainty(result: RarResult, active: Tensor, epsilon: float) -> Tensor:
    """gamma per slot in [0, 1]: 1 for a slot that converged, else how close its last
    update came to the freezing threshold (epsilon / delta); 0 for inactive slots."""
    close = (epsilon / result.final_deltas.clamp_min(1e-12)).clamp(max=1.0)
    gamma = torch.where(result.converged, torch.ones_like(close), close)
    return gamma * active.to(gamma.dtype)
