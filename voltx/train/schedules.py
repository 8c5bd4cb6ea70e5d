"""Learning-rate schedules as pure functions of the step (so resume needs only the step)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, *, max_lr: float, warmup: int, total: int, min_ratio: float = 0.01) -> float:
    """Linear warm-up to ``max_lr`` over ``warmup`` steps, then cosine decay to ``min_ratio*max_lr``.

    The original trainers' schedule. ``step`` counts optimizer steps from 0.
    """
    if warmup > 0 and step < warmup:
        return max_lr * (step + 1) / warmup
    decay_steps = max(1, total - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / decay_steps))
    min_lr = max_lr * min_ratio
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
