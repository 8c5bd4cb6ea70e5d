"""RAR (Root-Attend-Refine): iterative, per-slot refinement of frames by a VFN.

Every iteration is a Jacobi update over a snapshot of all slots (the original's
``rar.rs``)::

    drift_i = vfn(s_i, t_i)                       # Root: each slot's own drift
    msg_i   = attention(s)_i                      # Attend: over all active slots
    s_i'    = normalize(s_i + dt*(drift_i + beta*msg_i) + noise_i)   # Refine

A slot freezes (converges) once ``||s_i' - s_i|| < epsilon`` and then stays put, though
it still serves as a key/value for the others.  Slots without data start converged.  A
slot whose update collapses (``||s_i'|| < 1e-10``) is marked converged and kept as it
was.  The loop ends when every slot of every frame has converged or after
``max_iterations``.

Unlike the original's per-slot loops this runs fully batched: one VFN call and one
attention call per iteration over ``[B, 16, 256]``, with frozen slots masked out of the
update rather than gathered away, so a batch gives the same result as running each
frame alone.  It also fixes the original's ``adapt_sigma``, which adapted a clone of sigma
and so did nothing; here :func:`adapt_sigma` returns the new sigma and the loop uses it
when ``RarConfig.adapt_sigma`` is set.

Inference runs under ``torch.no_grad``; ``differentiable=True`` keeps the graph through
the unrolled iterations so a VFN can be trained through RAR (freezing decisions are
boolean, so gradients flow only through the slots that moved).

An energy head (``energy(slots, active) -> [B]``, lower = more coherent: the training plan's
Part I.3, "RAR then performs gradient descent on this energy landscape") enters in one of
two ways, ``RarConfig.energy_mode``:

* ``"blend"``: gradient steps on the landscape blended with the learned drift,
  ``s_i' = normalize(s_i + dt*(drift_i + beta*msg_i - lambda*dE/ds_i) + noise_i)``; with
  ``lambda = 0`` this is plain RAR, bit for bit.
* ``"control"``: the drift moves the frame, the energy judges the move (backtracking): a
  frame's update is kept only when it lowers the frame's energy by more than
  ``energy_tolerance``; otherwise the frame stays where it was and its step size halves, and
  after ``energy_halvings`` halvings its slots stop (the energy no longer decreases along the
  drift).  A frame whose energy is below ``energy_stop_below`` stops at once.  The energy is a
  frame's, so a frame's slots stop together.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from voltx.engine.attention import SlotAttention

# time(step, slot_iterations) -> per-slot time broadcastable to [B, S]; ``step`` is the
# 0-based iteration about to run, ``slot_iterations`` [B, S] the updates each slot has had.
TimeFn = Callable[[int, Tensor], Tensor]

# energy(slots [B, S, D], active [B, S]) -> [B], lower = more coherent (an EnergyHead).
EnergyFn = Callable[[Tensor, Tensor], Tensor]

# settle(slots [B, S, D]) -> [B, S] in [0, 1]: the share of its update each slot takes.
SettleFn = Callable[[Tensor], Tensor]

_COLLAPSE_NORM = 1e-10
ENERGY_MODES = ("off", "blend", "control")


@dataclass(frozen=True)
class RarConfig:
    """RAR settings; the first four defaults are the original's."""

    epsilon: float = 0.001
    """A slot freezes once its update moves it less than this (L2)."""
    max_iterations: int = 50
    """Upper bound on iterations; also the denominator of the default per-slot time."""
    dt: float = 0.1
    """Step size applied to ``drift + beta * msg``."""
    beta: float = 0.5
    """Weight of the attention message relative to the VFN drift."""
    ghost_alpha: float = 0.1
    """Blend weight of ghost (memory) attention, used when ghosts are given."""
    noise_scale: float = 1.0
    """Multiplies sigma: noise_i ~ N(0, (sigma_i * noise_scale)^2) per component."""
    adapt_sigma: bool = False
    """Adapt sigma after every iteration with :func:`adapt_sigma` (the original's intent)."""
    sigma_decay: float = 0.95
    """Factor for slots that are settling (delta below ``sigma_epsilon``)."""
    sigma_growth: float = 1.05
    """Factor for slots still moving: more noise to shake them out of a rut."""
    sigma_epsilon: float | None = None
    """Threshold of the decay rule; None = ``epsilon``.  With the freezing threshold itself
    every slot below it has just converged (sigma -> 0), so a looser value (e.g. 10x) is
    what lets noise anneal on slots that are close to settling."""
    energy_mode: str = "off"
    """How an energy head given to :func:`rar` acts: ``off``, ``blend`` or ``control`` (module docstring)."""
    energy_weight: float = 0.1
    """``blend``: lambda, the weight of ``-dE/ds`` beside the drift."""
    energy_tolerance: float = 0.0
    """``control``: a step is kept when it lowers the frame's energy by more than this."""
    energy_halvings: int = 3
    """``control``: rejected steps (each halving the frame's step size) before the frame stops."""
    energy_stop_below: float = float("-inf")
    """``control``: a frame whose energy is below this stops."""

    def __post_init__(self):
        if self.energy_mode not in ENERGY_MODES:
            raise ValueError(f"RarConfig.energy_mode = {self.energy_mode!r}; expected one of {', '.join(ENERGY_MODES)}")


class RarResult(NamedTuple):
    """What :func:`rar` returns (per-slot tensors are ``[B, S]``)."""

    slots: Tensor
    """Refined slots ``[B, S, D]``; inactive slots are returned unchanged."""
    iterations: Tensor
    """Updates each slot went through (int64); 0 for inactive slots."""
    converged: Tensor
    """True where the slot froze, collapsed, was stopped by the energy (``control``), or was
    inactive or ``frozen`` from the start."""
    final_deltas: Tensor
    """``||s' - s||`` of each slot's last update (0 for inactive or collapsed slots)."""
    total_iterations: Tensor
    """Iterations each frame ran ``[B]`` (the max over its slots)."""
    sigma: Tensor | None
    """The final per-slot sigma (adapted when ``config.adapt_sigma``), or None."""


def adapt_sigma(
    sigma: Tensor, converged: Tensor, deltas: Tensor, epsilon: float, decay: float = 0.95, growth: float = 1.05
) -> Tensor:
    """New per-slot noise level: converged -> 0; ``delta < epsilon`` -> ``sigma * decay``;
    otherwise ``sigma * growth``.  Pure: returns a new tensor (the original's bug was
    mutating a copy)."""
    adapted = torch.where(deltas < epsilon, sigma * decay, sigma * growth)
    return torch.where(converged, torch.zeros_like(sigma), adapted)


def energy_gradient(energy: EnergyFn, slots: Tensor, active: Tensor, differentiable: bool = False) -> Tensor:
    """``dE/ds [B, S, D]`` of the frames' energies; the graph is kept (second order) only when
    ``differentiable`` and ``slots`` is already part of one."""
    with torch.enable_grad():
        x = slots if differentiable and slots.requires_grad else slots.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(energy(x, active).sum(), x, create_graph=differentiable)
    return grad


class _EnergyControl:
    """State of ``control`` mode: each frame's energy, step scale and rejected steps."""

    def __init__(self, energy: EnergyFn, slots: Tensor, active: Tensor, config: RarConfig):
        self.energy, self.active, self.config = energy, active, config
        self.value = energy(slots, active).detach()
        self.scale = torch.ones_like(self.value)
        self.rejected = torch.zeros(self.value.shape, dtype=torch.long, device=slots.device)

    def low(self) -> Tensor:
        """``[B, 1]``: frames already below ``energy_stop_below``."""
        return (self.value < self.config.energy_stop_below).unsqueeze(-1)

    def judge(self, candidate: Tensor, updated: Tensor) -> tuple[Tensor, Tensor]:
        """(kept ``[B, 1]``: frames whose move lowered the energy enough, stopped ``[B, 1]``: frames
        whose step was rejected ``energy_halvings`` times).  Rejected frames' step sizes halve."""
        moved = updated.any(-1)
        value = self.energy(candidate, self.active).detach()
        keep = moved & (value < self.value - self.config.energy_tolerance)
        reject = moved & ~keep
        self.value = torch.where(keep, value, self.value)
        self.scale = torch.where(reject, self.scale * 0.5, self.scale)
        self.rejected = self.rejected + reject.long()
        return keep.unsqueeze(-1), (self.rejected > self.config.energy_halvings).unsqueeze(-1)


def _check_inputs(slots: Tensor, active: Tensor, sigma: Tensor | None, ghosts: Tensor | None) -> None:
    if slots.dim() != 3:
        raise ValueError(f"rar: slots must be [B, S, D], got {tuple(slots.shape)}")
    if tuple(active.shape) != tuple(slots.shape[:2]):
        raise ValueError(f"rar: active must be [B, S] = {tuple(slots.shape[:2])}, got {tuple(active.shape)}")
    if sigma is not None and tuple(sigma.shape) != tuple(slots.shape[:2]):
        raise ValueError(f"rar: sigma must be [B, S] = {tuple(slots.shape[:2])}, got {tuple(sigma.shape)}")
    if ghosts is not None and (ghosts.dim() != 3 or ghosts.shape[0] != slots.shape[0] or ghosts.shape[2] != slots.shape[2]):
        raise ValueError(f"rar: ghosts must be [B, G, D] with B, D as slots', got {tuple(ghosts.shape)}")


def rar(
    slots: Tensor,
    active: Tensor,
    vfn: nn.Module,
    attention: SlotAttention,
    config: RarConfig = RarConfig(),
    *,
    sigma: Tensor | None = None,
    ghosts: Tensor | None = None,
    ghost_mask: Tensor | None = None,
    bias: Tensor | None = None,
    frozen: Tensor | None = None,
    time: TimeFn | None = None,
    generator: torch.Generator | None = None,
    differentiable: bool = False,
    energy: EnergyFn | None = None,
    settle: SettleFn | None = None,
) -> RarResult:
    """Refine ``slots [B, S, D]`` where ``active [B, S]`` until every slot converges.

    Args:
        vfn: called as ``vfn(x [B, S, D], t [B, S]) -> [B, S, D]`` once per iteration.
        attention: the slot attention giving the messages.
        sigma: per-slot noise std ``[B, S]`` (None or 0 = no noise, the default).  Noise is
            drawn from ``generator`` for the whole batch each iteration and applied only
            to active, non-converged slots.
        ghosts / ghost_mask: ``[B, G, D]`` / ``[B, G]`` memory vectors blended into the
            messages with ``config.ghost_alpha``.
        bias: ``[S, S]`` additive attention bias (e.g. ``code_bias()``).
        frozen: bool ``[B, S]``: active slots that start converged (e.g. given facts to
            condition on): never updated, still attended to.
        time: per-slot time; default ``t_i = iterations_i / max_iterations`` (0 on the
            first step, 1/max after one update, ...).
        differentiable: keep the autograd graph through every iteration (training);
            otherwise the loop runs under ``torch.no_grad``.
        energy: the energy head used by ``config.energy_mode`` (module docstring); required
            unless that is ``off``, ignored then.  In ``control`` mode ``iterations`` counts
            rejected steps too (each costs a VFN call).
        settle: a per-slot gate ``[B, S]`` in [0, 1] that scales each slot's whole update (energy
            step included); a slot gated to 0 does not move, so it freezes at once: how a phase
            makes learnt stopping points exact fixed points (F3's settle gate). None = 1 everywhere.

    One function on purpose: the iteration is the algorithm (drift + messages + noise ->
    renormalise -> converge), read top to bottom against the original; its length is mostly
    this signature and docstring, the loop body is about fifty lines (the energy modes' state is
    :class:`_EnergyControl`).
    """
    _check_inputs(slots, active, sigma, ghosts)
    if config.energy_mode != "off" and energy is None:
        raise ValueError(f"rar: energy_mode {config.energy_mode!r} needs an energy head")
    active = active.bool()
    grad_mode = contextlib.nullcontext() if differentiable else torch.no_grad()
    with grad_mode:
        s = slots
        converged = ~active if frozen is None else ~active | frozen.bool()
        iterations = torch.zeros(active.shape, dtype=torch.long, device=slots.device)
        deltas = torch.zeros(active.shape, dtype=slots.dtype, device=slots.device)
        noise_sigma = None if sigma is None else sigma.to(slots.dtype)
        decay_epsilon = config.epsilon if config.sigma_epsilon is None else config.sigma_epsilon
        control = _EnergyControl(energy, s, active, config) if config.energy_mode == "control" else None

        for step in range(config.max_iterations):
            if control is not None:
                converged = converged | control.low()
            moving = ~converged
            if not bool(moving.any()):  # one host sync per iteration buys the early exit
                break
            t = iterations.to(slots.dtype) / config.max_iterations if time is None else time(step, iterations)
            drift = vfn(s, t)
            msg = attention(s, active, bias, ghosts=ghosts, ghost_mask=ghost_mask, ghost_alpha=config.ghost_alpha)
            update = drift + config.beta * msg
            if config.energy_mode == "blend":
                update = update - config.energy_weight * energy_gradient(energy, s, active, differentiable)
            if settle is not None:
                update = update * settle(s).unsqueeze(-1)
            step_size = config.dt if control is None else config.dt * control.scale.to(s.dtype)[:, None, None]
            proposal = s + step_size * update
            if noise_sigma is not None:
                # Drawn for every slot so the stream does not depend on who converged; the
                # masked update below discards it for inactive and converged slots.
                noise = torch.randn(s.shape, generator=generator, device=s.device, dtype=s.dtype)
                proposal = proposal + noise * (noise_sigma * config.noise_scale).unsqueeze(-1)

            norm = proposal.norm(dim=-1)
            collapsed = moving & (norm < _COLLAPSE_NORM)
            # Clamp before dividing: a NaN in the branch torch.where discards would still
            # poison the gradient in differentiable mode.
            refined = proposal / norm.clamp_min(_COLLAPSE_NORM).unsqueeze(-1)
            delta = (refined - s).norm(dim=-1)
            updated = moving & ~collapsed
            stopped = torch.zeros_like(moving)
            if control is not None:  # the energy judges the move: rejected frames stay, and stop after a few halvings
                keep, stop = control.judge(torch.where(updated.unsqueeze(-1), refined, s), updated)
                stopped = moving & ~keep & stop
                updated = updated & keep

            s = torch.where(updated.unsqueeze(-1), refined, s)
            deltas = torch.where(updated, delta, torch.where(collapsed, torch.zeros_like(deltas), deltas))
            iterations = iterations + moving.long()
            converged = converged | collapsed | stopped | (updated & (delta < config.epsilon))
            if config.adapt_sigma and noise_sigma is not None:
                noise_sigma = adapt_sigma(
                    noise_sigma, converged, delta.detach(), decay_epsilon, config.sigma_decay, config.sigma_growth
                )

    return RarResult(
        slots=s,
        iterations=iterations,
        converged=converged,
        final_deltas=deltas,
        total_iterations=iterations.amax(dim=-1),
        sigma=noise_sigma,
    )
