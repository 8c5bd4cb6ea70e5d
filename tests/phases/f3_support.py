"""What the F3 reasoning tests share: the reasoning half trained on fixed frames, as the phase's
losses train it (the phase itself runs them through the shared training loop)."""

from __future__ import annotations

import random

import torch

from voltx_phases.f3_train import collate_moves, reasoning_losses


def train_reasoner(reasoner, cfg, bank, items: list, *, steps: int, batch: int | None = None, lr: float | None = None, phrases: int = 0):
    """``steps`` AdamW steps of :func:`reasoning_losses` on ``items`` (chain moves of ``bank``'s frames):
    a fresh sample of ``batch`` moves each step (seeded), or all of them every step when ``batch`` is
    None; ``phrases``: how many of a held input's phrases T0 holds. Returns ``reasoner`` in eval mode."""
    opt = torch.optim.AdamW(reasoner.parameters(), lr=cfg.lr if lr is None else lr)
    gen, rng = torch.Generator().manual_seed(0), random.Random(0)
    every = None if batch is not None else collate_moves(bank, items, cfg.memory_frames, phrases)
    for _ in range(steps):
        moves = every if every is not None else collate_moves(bank, rng.sample(items, batch), cfg.memory_frames, phrases)
        loss = reasoning_losses(reasoner, cfg, gen, moves)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return reasoner.eval()
