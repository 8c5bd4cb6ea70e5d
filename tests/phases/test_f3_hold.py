"""F3 holds a storyless record's input in T0 (``f3.hold_input``, :attr:`voltx_phases.f3_memory.Memory.held`).

A SCAN-like world on fixed random frames (no renderer, to fit the test budget): "X twice" and
"X thrice" both pass through the parse "X" (one action) before "X X" / "X X X", so from the parse's
frame alone the last move is a coin toss. Trained through the phase's chain moves, losses and RAR,
the field that reads the held command lands every chain on its answer; the same field without it
cannot (the chain is not a function of the current frame and the move index)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from voltx_phases.f3 import F3Config
from voltx_phases.f3_data import chain_texts
from voltx_phases.f3_model import all_active, new_reasoner, refine
from voltx_phases.f3_train import FrameBank, chain_moves
from f3_support import train_reasoner

VERBS = ("J", "W", "R")
RECORDS = [{"input": f"{v} {n}", "output": " ".join([v] * k), "steps": [v], "task": "scan"}
           for v in VERBS for n, k in (("twice", 2), ("thrice", 3))]
CFG = replace(F3Config(), vfn_hidden=64, vfn_blocks=1, time_embed_freqs=4, chain_step_iterations=3, rar_max_iterations=9, lr=1e-2)


def _bank() -> FrameBank:
    texts = list(dict.fromkeys(t for r in RECORDS for t in chain_texts(r)))
    frames = F.normalize(torch.randn(len(texts), 16, 256, generator=torch.Generator().manual_seed(0)), dim=-1)
    return FrameBank(frames, torch.ones(len(texts), 16, dtype=torch.bool), {t: i for i, t in enumerate(texts)})


def _answered(hold: bool) -> float:
    """Share of the world's commands whose RAR endpoint is nearest (cosine) their own answer's frame
    among all answers, after 80 steps of the reasoning terms with (or without) the command held."""
    cfg = replace(CFG, hold_input=hold)
    torch.manual_seed(0)
    bank = _bank()
    items = chain_moves(RECORDS, bank, hold)
    reasoner = new_reasoner(cfg)
    train_reasoner(reasoner, cfg, bank, items, steps=80, batch=16)
    q = bank.slots[[bank.index[r["input"]] for r in RECORDS]]
    with torch.no_grad():
        end = refine(reasoner.eval(), q, all_active(q), cfg).slots
    answers = bank.slots[[bank.index[r["output"]] for r in RECORDS]]
    nearest = (F.normalize(end.flatten(1), dim=-1) @ F.normalize(answers.flatten(1), dim=-1).T).argmax(-1)
    return float((nearest == torch.arange(len(RECORDS))).float().mean())


@pytest.mark.parametrize("hold, low, high", [(True, 0.99, 1.0), (False, 0.0, 0.67)])
def test_the_last_move_needs_the_command_held_in_t0(hold, low, high):
    # measured (seed 0): held 1.00; not held 0.33 (the parse "X" goes on to "X X" or "X X X" whatever the command said)
    assert low <= _answered(hold) <= high
