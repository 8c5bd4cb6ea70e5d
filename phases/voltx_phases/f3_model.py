"""F3's model and training signals: frames, the RAR drift, corruption and the loss terms.

The model is one ``nn.ModuleDict`` (encoder, vfn, attention, identity, decoder) so the
shared loop checkpoints all of it at once. The drift RAR follows is
``vfn(s, t) + beta * attention(s)``; every training term below trains that same sum, so
what is learned is what RAR runs.

Per-slot time (shared by all terms and by inference): ``t = 0`` is a fully corrupted slot
and ``t -> 1`` clean (flow matching's ``x_t = (1 - t) z + t x1``; a denoised slot's time is
``1 - level``). RAR at inference cannot know how corrupted a slot is, so it runs its own
clock ``t = updates / rar_max_iterations``; the training unrolls use the same clock, and
denoising shows clean slots at every time so an already-right slot stays put whatever the
clock says.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx.engine.attention import SlotAttention
from voltx.engine.slot_decoder import IGNORE_INDEX
from voltx.engine.frame import MAX_SLOTS, SLOT_DIM
from voltx.engine.rar import RarConfig, RarResult, rar
from voltx.engine.vfn import ScaledVfn, SlotIdentityHead
from voltx_phases.lang_stack import LangStack

VFN_FOUNDATION = "vfn_foundation.safetensors"
"""F3's artifact: velocity field, attention and identity head, with their constructor args and RAR settings."""
NOISE_LEVEL = (0.2, 1.0)
"""Range of the Gaussian corruption's level: noise norm ~ level x the (unit) slot norm."""


def new_drift(cfg) -> nn.ModuleDict:
    """The velocity field and slot attention RAR follows, as training starts (also F3's
    "untrained" ablation)."""
    vfn = ScaledVfn(dim=SLOT_DIM, hidden=cfg.vfn_hidden, blocks=cfg.vfn_blocks, time_freqs=cfg.time_embed_freqs)
    attention = SlotAttention(SLOT_DIM)
    # RAR starts as the identity: the drift's last layers start at zero, so every frame is a
    # fixed point and the decoder first reads the encoder's own frames; denoising then grows
    # the drift where slots are corrupted. With Xavier init the drift started at norm ~16,
    # RAR scrambled every frame for the first hundreds of steps and the clipped gradient was
    # all regression (measured: the answer stayed at the best constant). Zero last layers, as
    # in adaLN-zero / ControlNet zero-convs: earlier layers get gradient from the first step on.
    nn.init.zeros_(vfn.exit.weight)
    nn.init.zeros_(vfn.exit.bias)
    nn.init.zeros_(attention.wv.weight)
    nn.init.zeros_(attention.wv.bias)
    return nn.ModuleDict({"vfn": vfn, "attention": attention})


def build_model(stack: LangStack, cfg) -> nn.ModuleDict:
    drift_part = new_drift(cfg)
    return nn.ModuleDict({
        "encoder": stack.encoder,
        "vfn": drift_part["vfn"],
        "attention": drift_part["attention"],
        "identity": SlotIdentityHead(SLOT_DIM, MAX_SLOTS),
        "decoder": stack.decoder,
    })


def vfn_args(cfg) -> dict:
    return {"dim": SLOT_DIM, "hidden": cfg.vfn_hidden, "blocks": cfg.vfn_blocks, "time_freqs": cfg.time_embed_freqs}


def save_vfn_foundation(ctx, model: nn.ModuleDict, cfg) -> None:
    """velocity field + attention + identity head, with the constructor args and RAR settings."""
    part = nn.ModuleDict({k: model[k] for k in ("vfn", "attention", "identity")})
    rar_settings = {"max_iterations": cfg.rar_max_iterations, "dt": cfg.rar_dt, "beta": cfg.rar_beta, "epsilon": cfg.rar_epsilon}
    ctx.save_artifact(VFN_FOUNDATION, part.state_dict(), "vfn_foundation", vfn_args(cfg), rar=rar_settings)


def frames(model: nn.ModuleDict, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Slots ``[B, 16, 256]`` and active ``[B, 16]`` of token ids (the decoder's context)."""
    enc = model["encoder"]
    return enc.slot_context(enc(ids, mask), mask)


def drift(model: nn.ModuleDict, x: Tensor, t: Tensor, active: Tensor, beta: float) -> Tensor:
    """The RAR drift at ``x`` with per-slot time ``t``: ``vfn(x, t) + beta * attention(x)``."""
    return model["vfn"](x, t) + beta * model["attention"](x, active)


def rar_config(cfg, iterations: int | None = None) -> RarConfig:
    return RarConfig(max_iterations=iterations or cfg.rar_max_iterations, dt=cfg.rar_dt, beta=cfg.rar_beta, epsilon=cfg.rar_epsilon)


def refine(model: nn.ModuleDict, slots: Tensor, active: Tensor, cfg, *, iterations: int | None = None,
           differentiable: bool = False) -> RarResult:
    """RAR with the inference clock (``t = updates / rar_max_iterations``), also for short training unrolls."""
    horizon = float(cfg.rar_max_iterations)
    return rar(slots, active, model["vfn"], model["attention"], rar_config(cfg, iterations),
               time=lambda step, done: done.to(slots.dtype) / horizon, differentiable=differentiable)


def _masked_mean(per_slot: Tensor, mask: Tensor) -> Tensor:
    """Mean over the ``mask``-ed slots. The regression terms pass each slot's *squared error
    summed over its 256 dims* (a unit slot wiped out costs 1), so they weigh on the shared
    gradient as much as the answer's cross-entropy instead of 256x less."""
    m = mask.to(per_slot.dtype)
    return (per_slot * m).sum() / m.sum().clamp_min(1.0)


# --- corruption (denoising slot refinement) ------------------------------------------------------


@dataclass
class Corruption:
    slots: Tensor
    """Corrupted slots ``[N, 16, D]``; only active slots differ from the clean ones."""
    time: Tensor
    """Per-slot time ``[N, 16]`` in [0, 1]: 0 zeroed or shuffled, 1 - level for noised, and for a
    clean slot any time (uniform): RAR's clock can stand anywhere when a slot is already right."""
    changed: Tensor
    """Active slots whose vector the corruption changed ``[N, 16]``."""


def corrupt(clean: Tensor, active: Tensor, gen: torch.Generator, cfg) -> Corruption:
    """Zero, noise or shuffle random active slots (the plan's three corruptions).

    Each active slot is zeroed with ``zero_prob``, noised with ``noise_prob`` (level ~
    U(0.2, 1), renormalised) or marked for shuffling with ``shuffle_prob``; the marked slots
    of a frame then swap contents by a random permutation (a slot that gets its own vector
    back counts as clean). All draws come from ``gen`` (on the CPU, so a resumed run
    replays them).
    """
    n, s, d = clean.shape
    dev = clean.device
    act = active.bool()
    u = torch.rand((n, s), generator=gen).to(dev)
    zero = act & (u < cfg.zero_prob)
    noise = act & (u >= cfg.zero_prob) & (u < cfg.zero_prob + cfg.noise_prob)
    shuffle = act & (u >= cfg.zero_prob + cfg.noise_prob) & (u < cfg.zero_prob + cfg.noise_prob + cfg.shuffle_prob)
    lo, hi = NOISE_LEVEL
    level = (lo + (hi - lo) * torch.rand((n, s), generator=gen)).to(dev)
    gauss = torch.randn((n, s, d), generator=gen).to(dev, clean.dtype) / d**0.5
    keys = torch.rand((n, s), generator=gen).to(dev)
    anytime = torch.rand((n, s), generator=gen).to(dev, clean.dtype)

    out = clean.clone()
    out = torch.where(noise.unsqueeze(-1), F.normalize(clean + level.unsqueeze(-1).to(clean.dtype) * gauss, dim=-1), out)
    # Shuffle: the marked slots of each frame, ordered by a random key, take each other's vectors.
    order = torch.where(shuffle, keys, torch.full_like(keys, 2.0)).argsort(dim=-1)  # marked slots first, randomly
    count = shuffle.sum(-1, keepdim=True)
    rank = torch.arange(s, device=dev).expand(n, s)
    source = torch.where(rank < count, order.gather(1, (rank + 1) % count.clamp_min(1)), order)  # a cyclic shift
    dest = order
    shuffled = clean.gather(1, source.unsqueeze(-1).expand(n, s, d))
    target_rows = torch.zeros_like(clean).scatter(1, dest.unsqueeze(-1).expand(n, s, d), shuffled)
    out = torch.where(shuffle.unsqueeze(-1), target_rows, out)
    out = torch.where(zero.unsqueeze(-1), torch.zeros_like(out), out)

    changed = act & (out - clean).abs().amax(-1).gt(0)
    # Clean slots at a uniform time, not t = 1: inference cannot know a slot is clean, it runs the
    # clock from 0. Trained only at t = 1, clean slots drifted at small t (measured: cosine 0.69
    # to their start after 30 iterations, no corrupted slot restored); this keeps them fixed points.
    time = anytime
    time = torch.where(noise & changed, 1.0 - level.to(clean.dtype), time)
    time = torch.where((zero | shuffle) & changed, torch.zeros_like(time), time)
    return Corruption(out, time, changed)


def denoise_loss(model: nn.ModuleDict, clean: Tensor, active: Tensor, corr: Corruption, beta: float) -> Tensor:
    """Per-slot MSE between the predicted drift and the restoring one (``clean - corrupted``), active slots."""
    predicted = drift(model, corr.slots, corr.time, active, beta)
    return _masked_mean((predicted - (clean - corr.slots)).pow(2).sum(-1), active)


def fixed_point_loss(model: nn.ModuleDict, clean: Tensor, active: Tensor, gen: torch.Generator, beta: float) -> Tensor:
    """Clean frames must be fixed points of RAR: the drift's tangential part, per slot, at a
    random clock time, must vanish.

    At inference RAR refines the *clean* frame of a query (every slot clean, so the attention
    message sees clean neighbours too, unlike in :func:`denoise_loss` where clean slots sit
    next to corrupted ones). A slot freezes only when one update moves it less than
    ``rar_epsilon``, i.e. when ``dt`` x the drift is below it; a drift of ~0.2 left every slot
    moving for all iterations and the frame drifting away from what the encoder wrote (the
    decoder then read a washed-out frame). Only the tangential part counts: RAR renormalises
    every slot, so a drift along the slot itself moves nothing (and flow matching's targets
    near clean points are largely radial).
    """
    n, s, _ = clean.shape
    t = torch.rand((n, s), generator=gen).to(clean.device, clean.dtype)
    v = drift(model, clean, t, active, beta)
    tangential = v - (v * clean).sum(-1, keepdim=True) * clean  # slots are unit vectors
    return _masked_mean(tangential.pow(2).sum(-1), active)


# --- slot-conditional flow matching ----------------------------------------------------------------


def flow_losses(model: nn.ModuleDict, clean: Tensor, active: Tensor, gen: torch.Generator, beta: float) -> dict[str, Tensor]:
    """Per-slot-time flow matching towards the clean slots, plus the slot-identity penalty.

    ``x_t = (1 - t) z + t x1`` with unit noise ``z`` and ``t ~ U(0, 1)`` per slot; the drift is
    trained towards ``x1 - z``. Its predicted endpoint ``x_t + (1 - t) v`` must still look like
    its slot (the identity head, frozen for this term, classifies it as its slot index) and
    point where the clean slot points (1 - cosine).
    """
    n, s, d = clean.shape
    dev = clean.device
    t = torch.rand((n, s), generator=gen).to(dev, clean.dtype)
    z = F.normalize(torch.randn((n, s, d), generator=gen).to(dev, clean.dtype), dim=-1)
    x_t = (1 - t).unsqueeze(-1) * z + t.unsqueeze(-1) * clean
    v = drift(model, x_t, t, active, beta)
    flow = _masked_mean((v - (clean - z)).pow(2).sum(-1), active)
    endpoint = x_t + (1 - t).unsqueeze(-1) * v
    head = model["identity"].proj
    logits = F.linear(endpoint, head.weight.detach(), head.bias.detach())
    slot_index = torch.arange(s, device=dev).expand(n, s)
    ce = F.cross_entropy(logits.reshape(-1, s), slot_index.reshape(-1), reduction="none").view(n, s)
    cos = F.cosine_similarity(endpoint, clean, dim=-1)
    identity = _masked_mean(ce + (1 - cos), active)
    return {"flow": flow, "identity": identity}


def identity_head_loss(model: nn.ModuleDict, clean: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
    """The identity head's own cross-entropy on clean slots (and its accuracy)."""
    n, s, _ = clean.shape
    slot_index = torch.arange(s, device=clean.device).expand(n, s)
    loss = model["identity"].loss(clean, slot_index, active)
    correct = model["identity"](clean).argmax(-1).eq(slot_index) & active.bool()
    return loss, correct.sum() / active.sum().clamp_min(1)


# --- reasoning chain and answer ---------------------------------------------------------------------


def chain_loss(model: nn.ModuleDict, src: Tensor, src_active: Tensor, dst: Tensor, dst_active: Tensor, cfg) -> Tensor:
    """A short differentiable RAR unroll from ``f_k`` must land on ``f_{k+1}`` (per-slot MSE of
    the step's drift ``result - f_k`` against ``f_{k+1} - f_k``, over slots active in both)."""
    result = refine(model, src, src_active, cfg, iterations=cfg.chain_unroll, differentiable=True)
    both = src_active.bool() & dst_active.bool()
    return _masked_mean(((result.slots - src) - (dst - src)).pow(2).sum(-1), both)


def answer_terms(model: nn.ModuleDict, slots: Tensor, active: Tensor, out_ids: Tensor, out_mask: Tensor,
                 cfg) -> tuple[Tensor, Tensor, RarResult]:
    """Teacher-forced answer loss and token accuracy of the decoder on the frame RAR refines.

    The decoder must train on the frames it is evaluated on: those after the *full* RAR
    (``rar_max_iterations``, convergence-based freezing), not after a short unroll. Trained
    after 2 differentiable iterations and evaluated after 30, the decoder met frames it had
    never seen and collapsed to nearly one answer (bAbI: 2 distinct predictions). So RAR runs
    as at inference (no graph) and the refined frame is passed straight through,
    ``f + (rar(f) - f).detach()``: its value is exactly the refined frame, its gradient is the
    identity into the encoder's frame, so the answer still fine-tunes the encoder. The VFN is
    trained by the denoising, flow and chain terms only (it gets no gradient from here).
    """
    result = refine(model, slots.detach(), active, cfg)
    frame = slots + (result.slots - slots).detach()
    decoder = model["decoder"]
    inputs, labels = decoder.teacher_forced_batch(out_ids, out_mask)
    logits = decoder(inputs, frame, active).float()
    valid = labels.ne(IGNORE_INDEX)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    # Each record's answer counts once (mean over its own tokens): averaged over all tokens of
    # the batch, a SCAN action sequence (~20 tokens) outweighed a bAbI answer (a word + EOS)
    # ten to one and bAbI stayed at its best constant answer.
    loss = ((per_token * valid).sum(-1) / valid.sum(-1).clamp_min(1)).mean()
    acc = (logits.argmax(-1).eq(labels) & valid).sum() / valid.sum().clamp_min(1)
    return loss, acc, result
