"""Vector field networks (VFNs): the drift that RAR follows, plus the slot identity head.

A VFN maps a slot vector ``x`` (and that slot's own time ``t``) to a drift of the same
shape; RAR moves each slot along it (``s += dt * drift``).  Every module here is
batched over any leading dims, so RAR makes *one* call per iteration for all frames and
all slots (``x [B, S, 256]``, ``t [B, S]``).  Time is **per slot** (training plan, phase
F3): different slots converge at different rates, so each carries its own clock.

* :class:`Vfn` -- the small MLP the original's RAR actually runs (``vfn.rs``, 525,568
  parameters, no time input).  ``time_conditioned=True`` adds a small sinusoidal time
  projection (16 frequencies -> 32 features -> Linear(32, hidden) added before the first
  ReLU: +16,896 = 542,464 parameters); off, the parameter count is the original's.
* :class:`ScaledVfn` -- the original's 51,685,632-parameter residual MLP
  (``scaled_vfn.rs``), which it never wired into RAR; same variable names.
* :class:`SlotIdentityHead` -- Linear(256, 16) predicting which slot (role) an
  embedding belongs to; phase F3 uses it to keep denoised slots role-like.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from voltx.engine.frame import MAX_SLOTS, SLOT_DIM


def sinusoidal_time_features(t: Tensor, freqs: Tensor) -> Tensor:
    """``[..., ] -> [..., 2F]``: ``[sin(t*f); cos(t*f)]`` with no 2*pi, as the original.

    ``freqs`` are log-spaced from 1 to 1e4, so t in [0, 1] spans slow and fast phases.
    """
    angles = t.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _log_spaced(count: int) -> Tensor:
    return torch.logspace(0.0, 4.0, count, dtype=torch.float32)  # 1 .. 1e4


def _time_for(x: Tensor, t: Tensor | float | None, who: str) -> Tensor:
    """Per-slot time broadcast to ``x.shape[:-1]`` (so ``[B, S]``, ``[B, 1]`` or a scalar work)."""
    if t is None:
        raise ValueError(f"{who} is time-conditioned: pass a per-slot time t broadcastable to {tuple(x.shape[:-1])}")
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return t.expand(x.shape[:-1])


def _xavier_linear(fan_in: int, fan_out: int) -> nn.Linear:
    """Linear with the original's init: Xavier-uniform limit sqrt(6/(in+out)), zero bias."""
    layer = nn.Linear(fan_in, fan_out)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Vfn(nn.Module):
    """The small VFN: Linear dim->hidden, ReLU, hidden->hidden, ReLU, hidden->dim.

    Parameters (dim 256, hidden 512): 131,584 + 262,656 + 131,328 = 525,568, exactly the
    original's.  With ``time_conditioned=True`` a ``time_proj`` Linear(32, hidden) over
    16-frequency sinusoidal features is added to the first layer's pre-activation
    (+16,896 -> 542,464).  Without it, ``t`` is accepted and ignored, so RAR can pass a
    per-slot time to any VFN.
    """

    TIME_FREQS = 16

    def __init__(self, dim: int = SLOT_DIM, hidden: int = 512, *, time_conditioned: bool = False):
        super().__init__()
        self.dim, self.hidden, self.time_conditioned = dim, hidden, time_conditioned
        self.fc1 = _xavier_linear(dim, hidden)
        self.fc2 = _xavier_linear(hidden, hidden)
        self.fc3 = _xavier_linear(hidden, dim)
        if time_conditioned:
            self.register_buffer("freqs", _log_spaced(self.TIME_FREQS), persistent=False)
            self.time_proj = _xavier_linear(2 * self.TIME_FREQS, hidden)

    def forward(self, x: Tensor, t: Tensor | float | None = None) -> Tensor:
        """``x [..., dim]``, ``t`` broadcastable to ``x.shape[:-1]`` -> drift ``[..., dim]``."""
        h = self.fc1(x)
        if self.time_conditioned:
            feats = sinusoidal_time_features(_time_for(x, t, "Vfn"), self.freqs.to(x.dtype))
            h = h + self.time_proj(feats)
        h = F.relu(self.fc2(F.relu(h)))
        return self.fc3(h)


class _Block(nn.Module):
    """Pre-norm residual MLP block: ``h + fc2(GELU(fc1(RMSNorm(h))))``."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.RMSNorm(hidden, eps=1e-6)
        self.fc1 = _xavier_linear(hidden, hidden)
        self.fc2 = _xavier_linear(hidden, hidden)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.fc2(F.gelu(self.fc1(self.norm(h))))


class ScaledVfn(nn.Module):
    """The original's large, time-conditioned VFN, with per-slot time.

    ``h = GELU(entry(x)) + GELU(time_proj([sin; cos](t*f)))``, then ``blocks`` residual
    blocks, ``final_norm`` (RMSNorm) and ``exit``.  Parameters at the defaults:
    time_proj 264,192 + entry 526,336 + 6 x 8,394,752 (norm 2,048 + fc1/fc2 4,196,352
    each) + final_norm 2,048 + exit 524,544 = 51,685,632, the original's count.
    Linear layers use Xavier-uniform with zero biases (the original's init recipe);
    GELU is the exact (erf) form.

    ``checkpoint_blocks`` (``[hardware].activation_checkpointing``) recomputes each block's
    activations during backward instead of keeping them: the same gradients, in the memory of
    one block's activations instead of ``blocks`` of them.

    ``roles > 0`` adds slot identity as an input (phase F3): a learned vector per slot index
    added to ``h``, so the drift of a slot knows which role it restores (a zeroed slot
    carries no other clue); ``x`` is then ``[..., roles, dim]``. ``roles = 0`` keeps the
    original's parameters exactly. ``frame_context`` (needs ``roles``) adds a projection of the
    whole flattened frame to every slot's hidden state: F3's per-slot drift alone, which sees the
    rest of the frame only through one attention message, fitted under half of the training
    moves of a one-fact lookup whose answer a linear probe reads from the same frames (README, F3).
    ``memory_context`` (needs ``frame_context``) adds a second frame as input, ``forward(x, t,
    memory)``: what RAR read from memory (F3's ghost frame, :mod:`voltx_phases.f3_memory`), per slot
    and flattened as the frame is; None (or zeros) where there is no memory.
    """

    def __init__(self, dim: int = SLOT_DIM, hidden: int = 2048, blocks: int = 6, time_freqs: int = 64, roles: int = 0,
                 frame_context: bool = False, memory_context: bool = False):
        super().__init__()
        self.dim, self.hidden, self.roles, self.frame_context = dim, hidden, roles, frame_context
        self.memory_context = memory_context
        if roles:
            self.role_embed = nn.Parameter(torch.randn(roles, hidden) * 0.1)
        if frame_context:
            if not roles:
                raise ValueError("ScaledVfn(frame_context=True) needs roles > 0 (the frame is [..., roles, dim])")
            self.context = _xavier_linear(roles * dim, hidden)
        if memory_context:
            if not frame_context:
                raise ValueError("ScaledVfn(memory_context=True) needs frame_context=True")
            self.memory_entry = _xavier_linear(dim, hidden)
            self.memory_frame = _xavier_linear(roles * dim, hidden)
        self.register_buffer("freqs", _log_spaced(time_freqs), persistent=False)
        self.time_proj = _xavier_linear(2 * time_freqs, hidden)
        self.entry = _xavier_linear(dim, hidden)
        self.blocks = blocks
        for i in range(blocks):
            # Named block_{i} (not a ModuleList) so state-dict keys match the original's vars.
            self.add_module(f"block_{i}", _Block(hidden))
        self.final_norm = nn.RMSNorm(hidden, eps=1e-6)
        self.exit = _xavier_linear(hidden, dim)
        self.checkpoint_blocks = False

    def fsdp_units(self) -> list[nn.Module]:
        """The blocks, each sharded as a unit of its own under FSDP2 (:mod:`voltx.train.sharding`): only
        one block's weights are gathered at a time."""
        return [getattr(self, f"block_{i}") for i in range(self.blocks)]

    def forward(self, x: Tensor, t: Tensor | float | None = None, memory: Tensor | None = None) -> Tensor:
        """``x [..., dim]``, per-slot ``t`` broadcastable to ``x.shape[:-1]`` -> ``[..., dim]``;
        ``memory`` (shaped as ``x``) only with ``memory_context``."""
        feats = sinusoidal_time_features(_time_for(x, t, "ScaledVfn"), self.freqs.to(x.dtype))
        h = F.gelu(self.entry(x)) + F.gelu(self.time_proj(feats))
        if self.roles:
            if x.dim() < 2 or x.shape[-2] != self.roles:
                raise ValueError(f"ScaledVfn(roles={self.roles}): x must be [..., {self.roles}, {self.dim}], got {tuple(x.shape)}")
            h = h + self.role_embed.to(h.dtype)
        if self.frame_context:  # every slot's drift reads the whole frame (per-slot conditioning)
            h = h + F.gelu(self.context(x.flatten(-2))).unsqueeze(-2)
        if self.memory_context and memory is not None:  # the ghost frame: each slot sees its own and the whole read
            h = h + F.gelu(self.memory_entry(memory)) + F.gelu(self.memory_frame(memory.flatten(-2))).unsqueeze(-2)
        recompute = self.checkpoint_blocks and torch.is_grad_enabled()
        for i in range(self.blocks):
            block = getattr(self, f"block_{i}")
            h = checkpoint(block, h, use_reentrant=False) if recompute else block(h)
        return self.exit(self.final_norm(h))


class SlotIdentityHead(nn.Module):
    """Linear(dim, 16): logits over slot types (roles) for a slot embedding.

    Phase F3 adds it so that denoising keeps structure: an Agent slot's refined vector
    should still be recognisably Agent-like, which a cross-entropy (or cosine) penalty
    on these logits enforces.
    """

    def __init__(self, dim: int = SLOT_DIM, num_slots: int = MAX_SLOTS):
        super().__init__()
        self.proj = nn.Linear(dim, num_slots)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., dim] -> [..., num_slots]`` logits."""
        return self.proj(x)

    def loss(self, x: Tensor, slot_types: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mean cross-entropy of predicted vs true slot type over the ``mask``-ed positions
        (padding-aware: empty slots carry no label; 0 when nothing is masked in)."""
        logits = self(x).reshape(-1, self.proj.out_features)
        target = slot_types.reshape(-1)
        if mask is None:
            return F.cross_entropy(logits, target)
        keep = mask.reshape(-1)
        per = F.cross_entropy(logits, target, reduction="none")
        return (per * keep).sum() / keep.sum().clamp_min(1)

