"""Slot attention: how the slots of a frame exchange information during RAR.

Each slot i sends a query, every *active* slot j (itself included) a key and a value;
``score_ij = q_i . k_j / sqrt(dim) + bias_ij`` and ``msg_i = sum_j softmax_j(score_ij) v_j``.
As in the original (``attention.rs``): Wq/Wk/Wv are dim->dim with Xavier init, the scale
is 1/16 at dim 256, there is no output projection, and slots without data get a zero
message and are never attended to.  Slots RAR has frozen are still active: they keep
serving as keys and values so the slots still moving can lean on settled ones.

Ghost blending (``ghost_attention.rs``): ``msg = (1-a) slot_msg + a ghost_msg`` where
``ghost_msg`` is a *separate* softmax of ``q_i . Wk(g)/sqrt(dim)`` over ghost vectors
(memory gists), applied to ``Wv(g)``, with no bias.  ``a`` is clamped to [0, 1].

The role priors :func:`language_bias` and :func:`code_bias` are additive 16x16 biases.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from voltx.engine.frame import MAX_SLOTS, SLOT_DIM

# Slot indices of the semantic roles (frame.SlotRole order).
_AGENT, _PREDICATE, _PATIENT, _LOCATION, _TIME, _MANNER, _INSTRUMENT, _CAUSE, _RESULT = range(9)


def _symmetric(pairs: dict[tuple[int, int], float], size: int = MAX_SLOTS) -> Tensor:
    bias = torch.zeros(size, size)
    for (i, j), value in pairs.items():
        bias[i, j] = bias[j, i] = value
    return bias


def code_bias() -> Tensor:
    """The original's code prior (``code_attention.rs``, ADR-029), value for value.

    Code slots: 0 function name, 1 operation, 2 arguments, 3 return, 4 loops, 5 imports /
    pattern, 6 conditionals, 7 exceptions, 8 (unused by the labeller but biased).
    """
    pairs = {(0, 2): 2.0, (0, 3): 2.0, (1, 2): 2.0,
             (0, 1): 1.5, (1, 3): 1.5, (1, 4): 1.5,
             (1, 5): 1.0, (1, 6): 1.0, (1, 7): 1.0, (1, 8): 1.0, (4, 6): 1.0, (4, 7): 1.0, (4, 8): 1.0,
             (6, 7): 0.5, (6, 8): 0.5, (7, 8): 0.5}
    pairs.update({(i, i): 0.5 for i in range(9)})
    return _symmetric(pairs)


def language_bias() -> Tensor:
    """A language prior over the semantic roles (symmetric, 0 elsewhere).

    The predicate assigns the thematic roles, so it is the hub; the strength follows how
    tightly each pair constrains the other in ordinary sentences:

    * Agent<->Predicate 2.0: the subject-verb relation, the tightest dependency (who can
      do what).
    * Predicate<->Patient 1.5: the verb selects its object almost as strongly.
    * Agent<->Patient 1.0: agent and patient constrain each other mainly through the verb.
    * Predicate<->Location/Time/Manner/Instrument 0.5: adjuncts modify the event but are
      optional and loosely selected.
    * Predicate<->Cause/Result and Cause<->Result 0.5: causal links hang off the event.

    The diagonal stays 0: self-attention already comes from q.k.  Free slots get no prior.
    """
    pairs = {(_AGENT, _PREDICATE): 2.0, (_PREDICATE, _PATIENT): 1.5, (_AGENT, _PATIENT): 1.0}
    pairs.update({(_PREDICATE, r): 0.5 for r in (_LOCATION, _TIME, _MANNER, _INSTRUMENT, _CAUSE, _RESULT)})
    pairs[(_CAUSE, _RESULT)] = 0.5
    return _symmetric(pairs)


def _masked_softmax(scores: Tensor, key_mask: Tensor) -> Tensor:
    """Softmax over the last dim ignoring keys where ``key_mask`` is False.

    Masked scores get the dtype's lowest finite value rather than -inf, so a row with no
    valid key gives a finite (uniform) result instead of NaN; callers zero such rows.
    Finite values matter for unrolled training: a NaN in a discarded branch still
    poisons gradients through ``torch.where``.
    """
    low = torch.finfo(scores.dtype).min
    return scores.masked_fill(~key_mask, low).softmax(dim=-1)


class SlotAttention(nn.Module):
    """Single-head attention across the slots of each frame (see the module docstring)."""

    def __init__(self, dim: int = SLOT_DIM):
        super().__init__()
        self.dim = dim
        self.scale = dim ** -0.5  # 1/16 at dim 256, as the original
        self.wq = nn.Linear(dim, dim)
        self.wk = nn.Linear(dim, dim)
        self.wv = nn.Linear(dim, dim)
        for layer in (self.wq, self.wk, self.wv):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _qkv(self, slots: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.wq(slots), self.wk(slots), self.wv(slots)

    def weights(self, slots: Tensor, active: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
        """Attention weights ``[B, S, S]`` (row i = query slot i); rows of inactive slots are 0."""
        q, k, _ = self._qkv(slots)
        return self._slot_weights(q, k, active, bias)

    def _slot_weights(self, q: Tensor, k: Tensor, active: Tensor | None, bias: Tensor | None) -> Tensor:
        scores = q @ k.transpose(-1, -2) * self.scale
        if bias is not None:
            scores = scores + bias.to(device=scores.device, dtype=scores.dtype)
        if active is None:
            return scores.softmax(dim=-1)
        attn = _masked_softmax(scores, active.unsqueeze(-2))
        return attn * active.unsqueeze(-1).to(attn.dtype)

    def forward(
        self,
        slots: Tensor,
        active: Tensor | None = None,
        bias: Tensor | None = None,
        *,
        ghosts: Tensor | None = None,
        ghost_mask: Tensor | None = None,
        ghost_alpha: float = 0.1,
    ) -> Tensor:
        """Messages ``[B, S, dim]`` for ``slots [B, S, dim]``.

        Args:
            active: bool ``[B, S]``; inactive slots are neither queries nor keys (message 0).
                None = all active.
            bias: additive ``[S, S]`` (or ``[B, S, S]``) score bias, e.g. :func:`code_bias`.
            ghosts: ``[B, G, dim]`` memory vectors to blend in with weight ``ghost_alpha``.
            ghost_mask: bool ``[B, G]``; a row with no valid ghost keeps its slot message
                unblended (rather than shrinking it by ``1 - alpha``).
        """
        q, k, v = self._qkv(slots)
        msg = self._slot_weights(q, k, active, bias) @ v
        if ghosts is None:
            return msg
        alpha = min(max(float(ghost_alpha), 0.0), 1.0)
        if alpha == 0.0:
            return msg
        gk = self.wk(ghosts)
        gv = self.wv(ghosts)
        gscores = q @ gk.transpose(-1, -2) * self.scale  # [B, S, G], no bias
        if ghost_mask is None:
            ghost_msg = gscores.softmax(dim=-1) @ gv
            blended = (1.0 - alpha) * msg + alpha * ghost_msg
        else:
            ghost_msg = _masked_softmax(gscores, ghost_mask.unsqueeze(-2)) @ gv
            has_ghost = ghost_mask.any(dim=-1)[:, None, None]
            blended = torch.where(has_ghost, (1.0 - alpha) * msg + alpha * ghost_msg, msg)
        if active is not None:
            blended = blended * active.unsqueeze(-1).to(blended.dtype)
        return blended
