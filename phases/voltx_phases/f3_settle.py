"""F3's settle gate: where RAR stands still (issue #14, point 5, "convergence by design").

RAR freezes a slot once its update moves it less than epsilon (0.001): at dt = 0.1 the drift
there must be under 0.01 per slot. A learnt drift regressed to zero at the answer frames is
not that precise (measured: median norm 0.55 at the training answers themselves, 0% of queries
converged), and a contraction term on RAR's own endpoints did not close the gap (README, F3).

So the fixed point is made structural. :class:`SettleGate` reads a frame and gives each slot
a gate that scales its whole update (:func:`voltx.engine.rar.rar`'s ``settle``): the
probability that the slot still has a move to make, and exactly 0 where that is below 1/2, so
every frame the gate calls an answer is a fixed point of the field, whatever the drift
regressed to, and RAR's freezing fires the first iteration a slot gets there. It is trained as
a classifier (:func:`settle_term`): closed at a chain's answer frame (where a move stops), open
at the question and the intermediate frames (where a move starts); the chain, flow and
denoising terms run through it as RAR does, which keeps it open where a frame must still move.
The gate sees the frame only, never the clock: a slot stops because of where it is, not
because a schedule ran out.

The failure mode is a gate that closes early (a question frozen where it started: converged
and wrong); F3's evaluation reports converged share beside accuracy and converged-and-right.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

OPEN_BIAS = 4.0
"""The gate starts open (sigmoid(4) = 0.98), so the first steps train the drift at nearly its
full size (the untrained field stays the identity: its drift is zero)."""


class SettleGate(nn.Module):
    """Per-slot gate logit from the slot, its role and the whole (flattened) frame: ``[B, S, D] -> [B, S]``.

    The frame context is what tells an answer's slot from a question's: a slot alone is one
    unit vector of 256 among many, the frame says which text it belongs to."""

    def __init__(self, slots: int, dim: int, hidden: int = 64):
        super().__init__()
        self.slot = nn.Linear(dim, hidden)
        self.frame = nn.Linear(slots * dim, hidden)
        self.role = nn.Parameter(torch.zeros(slots, hidden))
        self.out = nn.Linear(hidden, 1)
        nn.init.constant_(self.out.bias, OPEN_BIAS)
        # The input T0 holds (f3_memory.Memory.held), read beside the frame: SCAN's "I_JUMP I_JUMP" is
        # the answer of "jump twice" and a parse on the way for "jump twice and walk"; the frame alone
        # cannot tell. Zero at the start (and no draw of the RNG), so it changes nothing where no
        # input is held (bAbI: the held frame is zero, so is this weight's gradient).
        self.held = nn.Parameter(torch.zeros(hidden, slots * dim))

    def logits(self, x: Tensor, held: Tensor | None = None) -> Tensor:
        h = self.slot(x) + self.frame(x.flatten(-2)).unsqueeze(-2) + self.role
        if held is not None:
            h = h + F.linear(held.flatten(-2), self.held).unsqueeze(-2)
        return self.out(F.gelu(h)).squeeze(-1)

    def forward(self, x: Tensor, held: Tensor | None = None) -> Tensor:
        """``p = sigmoid(logit)``, the probability that the slot has a move to make, where ``p > 1/2``,
        and exactly 0 where the classifier says "answer": the slot stands still there. A gate that
        only approaches 0 lets a frame creep: RAR carries it toward the closed region, each step
        shrinking the next, and the last step falls slowly toward epsilon (measured on the quick
        preset's trained field, its test questions, 16 iterations: a plain sigmoid converged 0% of
        the queries, last step 0.012; ``max(0, 2p - 1)``, zero at the boundary itself, 74%; this
        gate 88%, qa1 answered 53%, 57% and 60%; README, F3)."""
        logits = self.logits(x, held)
        return torch.sigmoid(logits) * (logits > 0).to(logits.dtype)


def with_held_weight(tensors: dict[str, Tensor], prefix: str = "settle.") -> dict[str, Tensor]:
    """A saved reasoner's tensors with the gate's ``held`` weight added as zeros where the file predates
    it (its gate read the frame alone, which is what a zero weight does)."""
    key = prefix + "held"
    if key in tensors or prefix + "frame.weight" not in tensors:
        return tensors
    hidden, flat = tensors[prefix + "frame.weight"].shape
    return {**tensors, key: tensors[prefix + "frame.weight"].new_zeros(hidden, flat)}


OPEN_BEFORE = 0.75
"""Along a move, points short of this share of the way are labelled open too: without them the gate
learnt "answer-like" for the whole last stretch of the answer's move and froze frames short of it."""


def settle_term(gate: SettleGate, src: Tensor, final: Tensor, active: Tensor,
                between: Tensor | None = None, still_moving: Tensor | None = None, held: Tensor | None = None) -> Tensor:
    """Binary cross-entropy of every active slot's gate at a move's start ``src``: closed (0) where
    the item is a chain's answer standing still (``final``), open (1) at a question or an
    intermediate frame, whose move has yet to be made; and open at ``between`` (the flow term's
    points along the moves) where ``still_moving`` (short of :data:`OPEN_BEFORE` of a move's way);
    ``held``: the input T0 holds, which the gate reads beside the frame (:class:`SettleGate`)."""
    logits = gate.logits(src, held).float()
    target = (~final).unsqueeze(-1).expand_as(logits).float()
    per_slot = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    m = active.float()
    loss = (per_slot * m).sum() / m.sum().clamp_min(1.0)
    if between is not None:
        w = still_moving.float()
        on_way = F.binary_cross_entropy_with_logits(gate.logits(between, held).float(), torch.ones_like(w), reduction="none")
        loss = loss + (on_way * w).sum() / w.sum().clamp_min(1.0)
    return loss
