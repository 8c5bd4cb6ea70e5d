"""Frame energy: a learned coherence score (lower = more coherent), and its training aids.

The original only *describes* an energy ("VFN = -grad E"); nothing was implemented.  The
training plan (Part I, "frame discrimination") asks for exactly this: real frames get
low energy, corrupted ones ("chef cooks pasta in algebra") high energy, and RAR should
settle frames into low-energy states.  :class:`EnergyHead` provides the scalar, while
:func:`corrupt_frames` makes the incoherent negatives and
:func:`contrastive_energy_loss` the objective (phases F2/F3 use all three).

Architecture: each active slot is embedded together with a learned slot-position
embedding (so the head knows *which role* a vector sits in and can spot swaps), one
round of :class:`SlotAttention` lets slots compare with each other (coherence is a
relation between slots, not a property of one), a learned query attention-pools the
active slots, and an MLP maps the pooled vector to one energy per frame.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from voltx.engine.attention import SlotAttention
from voltx.engine.frame import MAX_SLOTS, SLOT_DIM

CORRUPTION_KINDS = ("swap", "noise", "zero", "foreign")


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


class Corrupted(NamedTuple):
    """Output of :func:`corrupt_frames`: the negatives and which corruption each row got
    (an index into ``CORRUPTION_KINDS``; -1 where the row had no active slot)."""

    slots: Tensor
    kind: Tensor


def _pick_active(active: Tensor, generator: torch.Generator | None, exclude: Tensor | None = None) -> Tensor:
    """A uniformly random active slot per row ([B] long); arbitrary for rows with none."""
    allowed = active if exclude is None else active & ~F.one_hot(exclude, active.shape[-1]).bool()
    u = torch.rand(active.shape, generator=generator, device=active.device)
    return u.masked_fill(~allowed, -1.0).argmax(dim=-1)


def corrupt_frames(
    slots: Tensor,
    active: Tensor,
    generator: torch.Generator | None = None,
    kinds: tuple[str, ...] = ("swap", "noise", "zero"),
    noise_level: float = 1.0,
) -> Corrupted:
    """Make one incoherent negative per frame; the active set is left unchanged, so an
    energy model has to judge content, not occupancy.

    Kinds (one drawn uniformly per row):
      * ``swap``: exchange the vectors of two distinct active slots (right words, wrong roles).
      * ``noise``: add to one active slot Gaussian noise with norm ``noise_level`` x its
        norm, then rescale to the original norm (level 1 turns it by about 45 degrees).
      * ``zero``: zero one active slot's vector while it stays marked active.
      * ``foreign``: replace one active slot with the same slot of the next frame in the
        batch (a plausible word in the wrong context: "pasta in algebra"); zero if that
        frame leaves the slot empty, and a no-op for a batch of one.
    ``swap`` needs two active slots and falls back to ``noise``; rows with no active slot
    are returned unchanged with kind -1.  Deterministic given ``generator``.
    """
    unknown = [k for k in kinds if k not in CORRUPTION_KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown corruption kinds {unknown}; choose from {CORRUPTION_KINDS}")
    batch = slots.shape[0]
    dev = slots.device
    rows = torch.arange(batch, device=dev)
    count = active.sum(dim=-1)
    kind = torch.randint(len(kinds), (batch,), generator=generator, device=dev)
    first = _pick_active(active, generator)
    second = _pick_active(active, generator, exclude=first)
    noise = torch.randn((batch, slots.shape[-1]), generator=generator, device=dev, dtype=slots.dtype)

    out = slots.clone()
    target = slots[rows, first]
    swapped = slots[rows, second]
    size = target.norm(dim=-1, keepdim=True)
    # Norm-preserving: RAR keeps slots unit length, so a negative that differs only in
    # norm would teach the head a shortcut rather than coherence.
    noisy = F.normalize(target + noise_level * size * F.normalize(noise, dim=-1), dim=-1) * size
    foreign = slots.roll(1, dims=0)[rows, first]
    options = {"swap": swapped, "noise": noisy, "zero": torch.zeros_like(target), "foreign": foreign}

    new_first = target
    recorded = torch.full_like(kind, -1)
    for index, name in enumerate(kinds):
        chosen = kind == index
        if name == "swap":
            # A row with a single active slot has nothing to swap with: noise it instead.
            ok = chosen & (count >= 2)
            out[rows, second] = torch.where(ok[:, None], target, out[rows, second])
            new_first = torch.where(ok[:, None], swapped, torch.where(chosen[:, None], noisy, new_first))
            recorded = torch.where(ok, 0, torch.where(chosen, CORRUPTION_KINDS.index("noise"), recorded))
        else:
            new_first = torch.where(chosen[:, None], options[name], new_first)
            recorded = torch.where(chosen, CORRUPTION_KINDS.index(name), recorded)
    has_any = count > 0
    out[rows, first] = torch.where(has_any[:, None], new_first, out[rows, first])
    return Corrupted(out, torch.where(has_any, recorded, -1))
