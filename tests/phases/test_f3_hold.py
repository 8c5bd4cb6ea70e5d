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
from voltx_phases.f3_memory import Memory, command_phrases, gather_phrases
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


# --- the held phrases (f3.hold_phrases, Memory.phrases) -------------------------------------------

ACTS = ("J", "W", "R", "L", "T", "S")
PAIRS = [(p, q) for p in ACTS for q in ACTS if p != q]
UNSEEN = [("J", "W"), ("W", "R"), ("R", "L"), ("L", "T"), ("T", "S"), ("S", "J")]  # each verb seen first and second in training


def _phrase_world() -> tuple[list[dict], FrameBank]:
    """Commands "p and q" -> answer "P Q". A command's whole frame is random (a new command's says nothing
    of its phrases, as a pooled frame of an unseen combination says little); a phrase's frame is its
    verb's; an answer's frame is compositional (slots 0-7 its first action's, 8-15 its second's)."""
    gen = torch.Generator().manual_seed(0)
    unit = lambda *shape: F.normalize(torch.randn(*shape, 256, generator=gen), dim=-1)  # noqa: E731
    first, second, verbs = unit(len(ACTS), 8), unit(len(ACTS), 8), unit(len(ACTS), 16)
    records = [{"input": f"{p.lower()} and {q.lower()}", "output": f"{p} {q}", "steps": [], "task": "scan"} for p, q in PAIRS]
    texts, frames = [], []
    for (p, q), r in zip(PAIRS, records):
        texts += [r["input"], r["output"]]
        frames += [unit(16), torch.cat([first[ACTS.index(p)], second[ACTS.index(q)]])]
    texts += [a.lower() for a in ACTS]
    frames += list(verbs)
    return records, FrameBank(torch.stack(frames), torch.ones(len(texts), 16, dtype=torch.bool), {t: i for i, t in enumerate(texts)})


def _unseen_answered(phrases: int) -> float:
    """Share of the unseen combinations whose RAR endpoint is nearest (cosine) their own answer among all
    answers, after 150 steps on the others, T0 holding the command (and ``phrases`` of its phrases)."""
    cfg = replace(CFG, hold_phrases=phrases)
    torch.manual_seed(0)
    records, bank = _phrase_world()
    train = [r for p, r in zip(PAIRS, records) if p not in UNSEEN]
    reasoner = train_reasoner(new_reasoner(cfg), cfg, bank, chain_moves(train, bank, True, phrases), steps=150, batch=16,
                              phrases=phrases)
    test = [r for p, r in zip(PAIRS, records) if p in UNSEEN]
    q = bank.slots[[bank.index[r["input"]] for r in test]]
    memory = Memory.empty(q)
    memory.phrases = gather_phrases(bank.slots, [[bank.index[t] for t in command_phrases(r["input"], phrases)] for r in test], phrases)
    with torch.no_grad():
        end = refine(reasoner, q, all_active(q), cfg, memory=memory).slots
    answers = bank.slots[[bank.index[r["output"]] for r in records]]
    nearest = (F.normalize(end.flatten(1), dim=-1) @ F.normalize(answers.flatten(1), dim=-1).T).argmax(-1)
    return float((nearest == torch.tensor([records.index(r) for r in test])).float().mean())


@pytest.mark.parametrize("phrases, low, high", [(2, 0.99, 1.0), (0, 0.0, 0.34)])
def test_an_unseen_combination_needs_its_phrases_held_in_t0(phrases, low, high):
    # measured (seed 0): phrases held 1.00; the whole command only 0.17 (its frame says nothing of an unseen pair)
    assert low <= _unseen_answered(phrases) <= high


def test_command_phrases_cut_at_the_conjunction_in_the_order_written():
    assert command_phrases("walk twice after run left", 2) == ["walk twice", "run left"]
    assert command_phrases("jump and look opposite right thrice", 2) == ["jump", "look opposite right thrice"]
    assert command_phrases("jump around left", 2) == ["jump around left"]
    assert command_phrases("jump and walk", 1) == ["jump and walk"]  # at most `limit`: the rest joins the last
