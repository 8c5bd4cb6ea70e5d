"""Frame energy: a learned coherence score (lower = more coherent), and its training aids.

The original only *describes* an energy ("VFN = -grad E"); nothing was implemented.  The
training plan (Part I, "frame discrimination") asks for exactly this: real frames get
low energy, corrupted ones ("chef cooks pasta in algebra") high energy, and RAR should
settle frames into low-energy states.  :class:`EnergyHead` provides the scalar and
:func:`contrastive_energy_loss` the objective; the phase that trains the head makes its own
negatives (F2: the same frame with a wrong tail).

Architecture: each active slot is embedded together with a learned slot-position
embedding (so the head knows *which role* a vector sits in and can spot swaps), one
round of :class:`SlotAttention` lets slots compare with each other (coherence is a
relation between slots, not a property of one), a learned query attention-pools the
active slots, and an MLP maps the pooled vector to one energy per frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from voltx.engine.attention import SlotAttention
from voltx.engine.frame import MAX_SLOTS, SLOT_DIM


class EnergyHead(nn.Module):
    """``energy(slots [B, S, dim], active [B, S]) -> [B]`` (lower = more coherent)."""

    def __init__(self, dim: int = SLOT_DIM, hidden: int = 128, num_slots: int = MAX_SLOTS):
        super().__init__()
        self.embed = nn.Linear(dim, hidden)
        self.input_scale = dim ** 0.5  # unit slot vectors -> unit-variance components
        self.position = nn.Parameter(torch.randn(num_slots, hidden))
        self.mix = SlotAttention(hidden)
        self.pool_query = nn.Parameter(torch.randn(hidden) * hidden ** -0.5)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, slots: Tensor, active: Tensor) -> Tensor:
        return self.energy(slots, active)

    def energy(self, slots: Tensor, active: Tensor) -> Tensor:
        """One energy per frame.  A frame with no active slot pools to zeros (a constant)."""
        h = F.gelu(self.embed(slots * self.input_scale) + self.position)
        h = h + self.mix(h, active)
        scores = h @ self.pool_query
        low = torch.finfo(scores.dtype).min
        weights = scores.masked_fill(~active, low).softmax(dim=-1) * active.to(h.dtype)
        pooled = (weights.unsqueeze(-1) * h).sum(dim=-2)
        return self.mlp(pooled).squeeze(-1)


def contrastive_energy_loss(e_pos: Tensor, e_neg: Tensor, margin: float = 1.0, kind: str = "hinge") -> Tensor:
    """Push coherent energies below incoherent ones by at least ``margin``.

    ``hinge``: ``mean(relu(margin + e_pos - e_neg))`` (zero once separated);
    ``softplus``: ``mean(softplus(margin + e_pos - e_neg))`` (never quite zero; smoother).
    Only the difference matters, so energies are free to drift; callers that want them
    anchored can add a small ``e**2`` penalty.
    """
    gap = margin + e_pos - e_neg
    if kind == "hinge":
        return F.relu(gap).mean()
    if kind == "softplus":
        return F.softplus(gap).mean()
    raise ValueError(f"unknown contrastive loss kind {kind!r}; expected 'hinge' or 'softplus'")
