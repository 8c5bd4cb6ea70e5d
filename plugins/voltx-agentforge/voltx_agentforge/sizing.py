"""Model-size-agnostic sizing (the plan's cross-cutting rule) and the premortem's pre-flight checks.

Nothing about the models' size is assumed: the run builds them, counts their parameters,
puts the count in the plan's category and picks from it, and from the free memory voltx's
preflight measures, the batch size and the memory strategy. The choice is logged (a
``sizing`` event and a console line), so a run on another machine or at another model size
says why it trained the way it did.

Categories and their batch sizes are the plan's (agent-forge-phases-1-4-summary.md, "Model
Size Agnostic Architecture"): tiny < 50M parameters (batch 32), small < 500M (16), medium < 2B
(8), large (4). The batch is halved while the estimated activations do not fit in
``memory_fraction`` of the free memory; below ``MIN_BATCH`` the strategy becomes activation
checkpointing (the core's blocks are recomputed in the backward pass) instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from voltx.errors import PreflightError
from voltx.train.preflight import check_resources

CATEGORIES = (("tiny", 50e6, 32), ("small", 500e6, 16), ("medium", 2e9, 8), ("large", float("inf"), 4))
"""(name, upper bound in parameters, the plan's batch size)."""
MIN_BATCH = 4
FLOAT_BYTES = 4


def categorize(params: int) -> tuple[str, int]:
    """The plan's size category of ``params`` and its batch size."""
    for name, bound, batch in CATEGORIES:
        if params < bound:
            return name, batch
    raise AssertionError("unreachable: the last bound is infinite")


def activation_bytes(seq_len: int, d_model: int, layers: int, refine_steps: int, vocab: int, ff_mult: int) -> int:
    """Activations one example keeps for the backward pass (an estimate: per block the input,
    q/k/v, attention output, projection, the MLP's hidden pair and two norms; each refinement's
    logits twice: every step's loss counts)."""
    per_block = (7 + 2 * ff_mult) * d_model
    return FLOAT_BYTES * seq_len * refine_steps * (per_block * layers + 2 * vocab)


@dataclass(frozen=True)
class Sizing:
    params: int
    category: str
    batch_size: int
    strategy: str
    """"full activations", or "activation checkpointing" when even MIN_BATCH would not fit."""
    free_mem_gb: float
    free_disk_gb: float
    need_disk_gb: float
    activation_mb_per_example: float
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def disk_need(params: list[int], keep_checkpoints: int, optimizer_states: int) -> int:
    """Bytes the run writes at most: each model's checkpoints (weights and ``optimizer_states``
    tensors per parameter, ``keep_checkpoints`` kept + 1 being written) and its two artifact
    copies (the run's and the published one). voltx's own check counts two optimizer states and
    no artifacts; Muon x Grokfast keeps three (AdamW's moments and the slow gradient)."""
    return FLOAT_BYTES * sum(params) * ((1 + optimizer_states) * (keep_checkpoints + 1) + 2)


def plan_sizing(run_dir, params: list[int], act_bytes: int, checkpointed_bytes: int, keep_checkpoints: int, device, *,
                batch_size: int = 0, memory_fraction: float = 0.5, optimizer_states: int = 2) -> Sizing:
    """Pre-flight (voltx's disk and memory checks for all ``params`` of the run's models, then the
    disk for everything the run writes: :func:`disk_need`) then the batch and memory strategy of
    the largest model. ``act_bytes`` / ``checkpointed_bytes``: one example's activations without /
    with activation checkpointing. ``batch_size`` > 0 is the user's, kept (and refused when it
    cannot fit even with checkpointing)."""
    figures = check_resources(run_dir, sum(params), keep_checkpoints, device)
    need = disk_need(params, keep_checkpoints, optimizer_states)
    if figures["free_disk_gb"] * 1024**3 < need:
        raise PreflightError(
            f"not enough disk under {run_dir}: {figures['free_disk_gb']:.2f} GiB free, about {need / 1024**3:.2f} GiB needed "
            f"for {len(params)} models of {sum(params):,} parameters in all ({keep_checkpoints} checkpoints kept + 1 in flight, "
            f"{optimizer_states} optimizer tensors per parameter, two copies of each artifact). Free space, lower "
            "[run].keep_checkpoints, or put runs elsewhere with --runs-dir.")
    figures["need_disk_gb"] = max(figures["need_disk_gb"], need / 1024**3)
    biggest = max(params)
    category, planned = categorize(biggest)
    budget = figures["free_mem_gb"] * 1024**3 * memory_fraction - FLOAT_BYTES * 4 * biggest
    batch = batch_size or planned
    reason = f"user's batch_size {batch}" if batch_size else f"{category} model ({biggest:,} parameters): the plan's batch {planned}"
    if not batch_size:
        while batch > MIN_BATCH and batch * act_bytes > budget:
            batch //= 2
        if batch < planned:
            reason += f", halved to {batch} to fit {memory_fraction:.0%} of the free memory"
    strategy = "full activations"
    if batch * act_bytes > budget:
        strategy = "activation checkpointing"
        if batch * checkpointed_bytes > budget:
            raise PreflightError(
                f"not enough memory for a batch of {batch}: about {batch * checkpointed_bytes / 1024**3:.2f} GiB of activations "
                f"even with activation checkpointing, against "
                f"{max(budget, 0) / 1024**3:.2f} GiB usable ({memory_fraction:.0%} of {figures['free_mem_gb']:.2f} GiB free, "
                "less the weights and optimizer state). Lower cognate.batch_size or cognate.max_len, or use a larger machine.")
        reason += "; activations do not fit: checkpointing the core's blocks"
    return Sizing(biggest, category, batch, strategy, round(figures["free_mem_gb"], 3), round(figures["free_disk_gb"], 3),
                  round(figures["need_disk_gb"], 3), round(act_bytes / 1024**2, 3), reason)
