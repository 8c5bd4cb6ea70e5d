"""Issue #14, point 7: RAR must matter. A small F3 run (the phase's own renderer and reasoning
terms, in-process to fit the test budget) on a generated lookup task: each question's answer
is a word the question does not contain, so the renderer reading the question's frame (RAR
replaced by the identity) cannot answer, and only a velocity field that learnt the move
question frame -> answer frame can. Exact match through encode -> RAR -> render."""

from __future__ import annotations

from dataclasses import replace

import torch

from voltx_phases import lang_stack
from voltx_phases.f3 import F3Config
from voltx_phases.f3_data import encode, normalise, training_texts
from voltx_phases.f3_model import all_active, encode_frames, new_reasoner, refine, render_terms
from voltx_phases.f3_train import FrameBank, chain_moves
from f3_support import train_reasoner

PAIRS = [("cup", "kitchen"), ("ball", "garden"), ("pen", "office"), ("coat", "hallway"), ("book", "bedroom"), ("soap", "bathroom")]
RECORDS = [{"input": f"Where is the {thing}?", "output": place, "steps": [], "task": "lookup"} for thing, place in PAIRS]
CFG = replace(F3Config(), vfn_hidden=64, vfn_blocks=1, time_embed_freqs=4, chain_step_iterations=3, rar_max_iterations=3,
              lr=5e-3)
"""One move of 3 RAR iterations: the chain [question, answer] needs exactly that many."""


def _answers(stack: lang_stack.LangStack, reasoner, *, rar_on: bool, key: str = "input") -> float:
    """Exact answers rendered from RAR's endpoint (or, ``rar_on=False``, from the frame of ``key``'s text)."""
    ids, mask = encode(stack.tokenizer, [r[key] for r in RECORDS], 16, torch.device("cpu"), keep="tail")
    with torch.no_grad():
        frame, _, _ = encode_frames(stack.encoder, ids, mask)
        active = all_active(frame)
        end = refine(reasoner, frame, active, CFG).slots if rar_on else frame
        out = stack.decoder.generate(end, active, max_new_tokens=8)
    return sum(normalise(stack.tokenizer.decode(o)) == r["output"] for o, r in zip(out, RECORDS)) / len(RECORDS)


def test_rar_moves_a_question_frame_to_its_answer_and_the_identity_cannot():
    torch.manual_seed(0)
    texts = training_texts(RECORDS)
    tok = lang_stack.train_tokenizer(texts, 300)
    stack = lang_stack.LangStack(tok, lang_stack.new_encoder(tok.get_vocab_size(), 16, recency=True),
                                 lang_stack.new_decoder(tok.get_vocab_size(), 8), "new")
    # 1. the renderer: every text read back from its own frame (nothing maps a question to its answer)
    params = [*stack.encoder.parameters(), *stack.decoder.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3)
    ids, mask = encode(tok, texts, 16, torch.device("cpu"), keep="tail")
    for _ in range(40):
        terms = render_terms(stack.encoder, stack.decoder, ids, mask, ids, mask)
        opt.zero_grad()
        (terms["render"] + terms["spread"]).backward()
        opt.step()
    stack.encoder.requires_grad_(False).eval()
    stack.decoder.requires_grad_(False).eval()
    assert _answers(stack, None, rar_on=False, key="output") == 1.0  # the renderer reads every answer back from its own frame
    # 2. the velocity field on the frozen frames: the move question -> answer, the answer a fixed point
    bank = FrameBank.build(stack.encoder, tok, texts, 16, torch.device("cpu"))
    reasoner = new_reasoner(CFG)
    untrained = _answers(stack, reasoner, rar_on=True)
    train_reasoner(reasoner, CFG, bank, chain_moves(RECORDS, bank), steps=100)
    rar_off, with_rar = _answers(stack, reasoner, rar_on=False), _answers(stack, reasoner, rar_on=True)
    chance = 1 / len(PAIRS)
    assert rar_off <= chance and untrained <= chance, (rar_off, untrained)  # the identity renders the question
    assert with_rar >= 5 / 6, (with_rar, rar_off)
