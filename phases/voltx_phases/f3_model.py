"""F3's model and training signals: frames of chain texts, the RAR drift and the loss terms.

Two parts, trained in turn. The language part (encoder + decoder) is a renderer: it learns
to read a text back from that same text's frame (:func:`render_terms`), never a question's
answer. The reasoning part (``vfn``, ``attention``, ``identity``: :func:`new_reasoner`) is
what RAR runs; it is trained on frames of the frozen encoder, on each move of a record's
chain ``frame(k) -> frame(k+1)`` (:func:`chain_terms`), so RAR carries a question's frame to
its answer's frame, which the frozen renderer then reads.

Frames. A text's frame is its 16 R0 slots with the inactive ones *filled* with the frame's
mean (:func:`filled`): RAR only moves the slots active in the question's frame, and a
question has more active slots than its one-word answer, so every frame F3 handles has the
same 16 slots, and the renderer is trained on filled frames too.

Time. RAR's clock runs per slot, ``t = updates / rar_max_iterations``. A chain move takes
``chain_step_iterations`` (m) RAR iterations, so move ``k`` of a chain happens at clock
``k m / H``: the clock tells the field which move it is making. The chain's last frame,
the answer, is a fixed point by construction: a settle gate (:mod:`voltx_phases.f3_settle`),
trained to close there and stay open at the question and intermediate frames, scales the
whole drift, so RAR's per-slot freezing fires where the gate has closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx.engine.attention import SlotAttention, language_bias
from voltx.engine.frame import MAX_SLOTS, SLOT_DIM
from voltx.engine.rar import RarConfig, RarResult, rar
from voltx.engine.slot_decoder import IGNORE_INDEX
from voltx.engine.vfn import ScaledVfn, SlotIdentityHead
from voltx_phases.f3_energy import RarEnergy
from voltx_phases.f3_memory import Memory, MemoryRead, PhraseRead
from voltx_phases.f3_settle import OPEN_BEFORE, SettleGate, settle_term

VFN_FOUNDATION = "vfn_foundation.safetensors"
"""F3's artifact: velocity field, attention and identity head, with their constructor args and RAR settings."""
NOISE_LEVEL = (0.2, 1.0)
"""Range of the Gaussian corruption's level: noise norm ~ level x the (unit) slot norm."""
LANGUAGE_BIAS = language_bias()
"""The plan's role prior on slot attention (Agent-Predicate-Patient hub), used in training and RAR alike."""


def vfn_args(cfg) -> dict:
    return {"dim": SLOT_DIM, "hidden": cfg.vfn_hidden, "blocks": cfg.vfn_blocks, "time_freqs": cfg.time_embed_freqs,
            "roles": MAX_SLOTS, "frame_context": True, "memory_context": True}


def new_reasoner(cfg) -> nn.ModuleDict:
    """The velocity field (slot identity as input), slot attention, identity head, memory read and
    settle gate, as training starts (also F3's "untrained" ablation: the drift's last layers are
    zero, RAR the identity)."""
    vfn = ScaledVfn(**vfn_args(cfg))
    attention = SlotAttention(SLOT_DIM)
    # Zero last layers (as adaLN-zero / ControlNet zero-convs): RAR starts as the identity, the
    # earlier layers still get gradient from the first step.
    nn.init.zeros_(vfn.exit.weight)
    nn.init.zeros_(vfn.exit.bias)
    nn.init.zeros_(attention.wv.weight)
    nn.init.zeros_(attention.wv.bias)
    reasoner = nn.ModuleDict({"vfn": vfn, "attention": attention, "identity": SlotIdentityHead(SLOT_DIM, MAX_SLOTS),
                              "memory": MemoryRead(MAX_SLOTS, SLOT_DIM, rate=1.0 / (cfg.chain_step_iterations * cfg.rar_dt)),
                              "settle": SettleGate(MAX_SLOTS, SLOT_DIM)})
    if cfg.hold_input and cfg.hold_phrases:
        reasoner["phrases"] = PhraseRead(cfg.hold_phrases, SLOT_DIM)  # zero-initialised: no random draws
    return reasoner


def save_vfn_foundation(ctx, reasoner: nn.ModuleDict, cfg) -> None:
    """velocity field + attention + identity head, with the constructor args and RAR settings."""
    rar_settings = {"max_iterations": cfg.rar_max_iterations, "dt": cfg.rar_dt, "beta": cfg.rar_beta, "epsilon": cfg.rar_epsilon,
                    "chain_step_iterations": cfg.chain_step_iterations, "attention_bias": "language", "hold_input": cfg.hold_input,
                    "hold_phrases": cfg.hold_phrases if cfg.hold_input else 0}
    ctx.save_artifact(VFN_FOUNDATION, reasoner.state_dict(), "vfn_foundation", vfn_args(cfg), rar=rar_settings)


# --- frames ---------------------------------------------------------------------------------------


def filled(slots: Tensor, active: Tensor) -> Tensor:
    """Every inactive slot replaced by the normalised mean of the frame's active slots (module
    docstring); a frame without active slots stays zero."""
    m = active.unsqueeze(-1).to(slots.dtype)
    mean = F.normalize((slots * m).sum(1, keepdim=True), dim=-1)
    return torch.where(active.unsqueeze(-1), slots, mean.expand_as(slots))


def all_active(frame: Tensor) -> Tensor:
    """The active mask of a filled frame: every slot of a frame that has one."""
    return frame.norm(dim=-1) > 0


def encode_frames(encoder: nn.Module, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Filled frames ``[B, 16, D]``, the encoder's own active slots ``[B, 16]`` and R3 ``[B, 16, D]``."""
    out = encoder(ids, mask)
    slots, active = encoder.slot_context(out, mask)
    return filled(slots, active), active, encoder.token_slots(out, mask)


def _masked_mean(per_slot: Tensor, mask: Tensor) -> Tensor:
    """Mean over the ``mask``-ed slots (the regression terms pass squared errors summed over a slot's dims)."""
    m = mask.to(per_slot.dtype)
    return (per_slot * m).sum() / m.sum().clamp_min(1.0)


# --- the renderer ---------------------------------------------------------------------------------


def render_terms(encoder: nn.Module, decoder: nn.Module, ids: Tensor, mask: Tensor, out_ids: Tensor,
                 out_mask: Tensor) -> dict[str, Tensor]:
    """The decoder reads a text back from that text's own (filled) frame: teacher-forced
    cross-entropy and token accuracy; and multi-resolution consistency (plan signal 4): each
    active slot's R0 must agree (cosine) with its token-level R3, no label needed."""
    out = encoder(ids, mask)
    slots, active = encoder.slot_context(out, mask)
    frame = filled(slots, active)
    inputs, labels = decoder.teacher_forced_batch(out_ids, out_mask)
    logits = decoder(inputs, frame, all_active(frame)).float()
    valid = labels.ne(IGNORE_INDEX)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    # Each text counts once (mean over its own tokens): averaged over the batch's tokens, a story
    # (~30 tokens) outweighed a one-word answer 15 to 1 and the renderer read "kitchen" back as
    # "Mary went to the kitchen." (measured: answers read back 0%).
    loss = ((per_token * valid).sum(-1) / valid.sum(-1).clamp_min(1)).mean()
    acc = (logits.argmax(-1).eq(labels) & valid).sum() / valid.sum().clamp_min(1)
    consistency = _masked_mean(1 - F.cosine_similarity(slots, encoder.token_slots(out, mask), dim=-1), active)
    return {"render": loss, "render_acc": acc, "resolution": consistency, "spread": uniformity(frame)}


def uniformity(frame: Tensor, temperature: float = 2.0) -> Tensor:
    """Wang & Isola's uniformity of the (flattened, normalised) frames of a batch of distinct
    texts: log of the mean ``exp(temperature x cosine)`` over pairs.

    Why: a fresh CNN encoder gives every text nearly the same frame (its GELU features share
    one large positive component: measured, two one-word answers at cosine 0.98, two stories
    at 0.9999), so the renderer learnt a language model that ignores the frame (read back 0%
    after 140 steps) and every chain move was a drift of ~0. Spreading the frames apart uses
    no label and maps nothing to anything else."""
    flat = F.normalize(frame.flatten(1), dim=-1)
    n = flat.shape[0]
    if n < 2:
        return flat.new_zeros(())
    sims = (flat @ flat.T).masked_fill(torch.eye(n, dtype=torch.bool, device=flat.device), float("-inf"))
    return torch.logsumexp(temperature * sims.flatten(), 0) - torch.log(torch.tensor(float(n * (n - 1))))


# --- the drift and RAR ----------------------------------------------------------------------------


def field(reasoner: nn.ModuleDict, memory: Memory):
    """The velocity field RAR calls, ``(x, t) -> vfn(x, t, pull) + pull``, ``pull`` the ghost blend
    of memory read at the frame being moved, recomputed every iteration (:mod:`voltx_phases.f3_memory`;
    the memory's keys once); the held input and its phrases (where T0 holds them) are read with the pull."""
    reader = reasoner["memory"]
    keys = reader.keys(memory)
    held = memory.held
    if memory.phrases is not None and "phrases" in reasoner:
        phrases = reasoner["phrases"](memory.phrases)
        held = phrases if held is None else held + phrases

    def velocity(x: Tensor, t: Tensor) -> Tensor:
        pull = reader.pull(x, memory, keys)
        # the input T0 holds (a SCAN command; zero where a story is memory) is read with the pull
        read = pull if held is None else pull + held
        return reasoner["vfn"](x, t, read) + pull
    return velocity


def drift(reasoner: nn.ModuleDict, velocity, x: Tensor, t: Tensor, active: Tensor, beta: float, held: Tensor | None = None) -> Tensor:
    """The RAR drift at ``x`` with per-slot time ``t``: ``settle(x, held) (velocity(x, t) + beta * attention(x))``
    (``velocity``: :func:`field`; ``held``: the input T0 holds), as :func:`refine` runs it."""
    return reasoner["settle"](x, held).unsqueeze(-1) * (velocity(x, t) + beta * reasoner["attention"](x, active, LANGUAGE_BIAS))


def rar_config(cfg, iterations: int | None = None, **energy) -> RarConfig:
    return RarConfig(max_iterations=iterations or cfg.rar_max_iterations, dt=cfg.rar_dt, beta=cfg.rar_beta, epsilon=cfg.rar_epsilon,
                     **energy)


def refine(reasoner: nn.ModuleDict, slots: Tensor, active: Tensor, cfg, *, iterations: int | None = None,
           energy: RarEnergy | None = None, memory: Memory | None = None) -> RarResult:
    """RAR with the per-slot clock ``t = updates / rar_max_iterations`` and the language bias, the
    field reading ``memory`` (none: an empty one; with ``cfg.hold_input``, a row without a story holds
    ``slots`` itself, :meth:`Memory.holding`), every update scaled by the settle gate; with
    F2's energy head as ``energy`` says (:mod:`voltx_phases.f3_energy`)."""
    horizon = float(cfg.rar_max_iterations)
    settings, head = ({}, None) if energy is None else (energy.settings(), energy.head)
    memory = Memory.empty(slots) if memory is None else memory
    if memory.held is None and cfg.hold_input:
        memory = memory.holding(slots)  # RAR's input, kept in T0 where there is no story
    return rar(slots, active, field(reasoner, memory), reasoner["attention"], rar_config(cfg, iterations, **settings), bias=LANGUAGE_BIAS,
               time=lambda step, done: (done.to(slots.dtype) / horizon).clamp(max=1.0), energy=head,
               settle=lambda x: reasoner["settle"](x, memory.held))


# --- corruption (denoising slot refinement) ------------------------------------------------------


@dataclass
class Corruption:
    slots: Tensor
    """Corrupted slots ``[N, 16, D]``; only active slots differ from the clean ones."""
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

    out = clean.clone()
    out = torch.where(noise.unsqueeze(-1), F.normalize(clean + level.unsqueeze(-1).to(clean.dtype) * gauss, dim=-1), out)
    # Shuffle: the marked slots of each frame, ordered by a random key, take each other's vectors.
    order = torch.where(shuffle, keys, torch.full_like(keys, 2.0)).argsort(dim=-1)  # marked slots first, randomly
    count = shuffle.sum(-1, keepdim=True)
    rank = torch.arange(s, device=dev).expand(n, s)
    source = torch.where(rank < count, order.gather(1, (rank + 1) % count.clamp_min(1)), order)  # a cyclic shift
    shuffled = clean.gather(1, source.unsqueeze(-1).expand(n, s, d))
    target_rows = torch.zeros_like(clean).scatter(1, order.unsqueeze(-1).expand(n, s, d), shuffled)
    out = torch.where(shuffle.unsqueeze(-1), target_rows, out)
    out = torch.where(zero.unsqueeze(-1), torch.zeros_like(out), out)
    return Corruption(out, act & (out - clean).abs().amax(-1).gt(0))


# --- the reasoning terms ----------------------------------------------------------------------------


@dataclass
class Moves:
    """A batch of chain moves ``src -> dst`` on precomputed (frozen-encoder) frames."""

    src: Tensor
    """Filled frame of chain text k ``[B, 16, D]``."""
    dst: Tensor
    """Filled frame of chain text k + 1 (for a final item: the answer itself)."""
    dst_active: Tensor
    """The encoder's own active slots of ``dst`` (identity labels)."""
    step: Tensor
    """k ``[B]`` (float)."""
    final: Tensor
    """``[B]`` bool: the item is the chain's answer, a fixed point (src = dst)."""
    memory: Memory
    """The record's story, one frame a sentence (empty for a record without one)."""
    support: Tensor
    """``[B]`` long: the memory position holding ``dst`` (its newest copy), -1 where ``dst`` is not in memory."""


def chain_terms(reasoner: nn.ModuleDict, moves: Moves, gen: torch.Generator, cfg) -> dict[str, Tensor]:
    """The three objectives on one batch of chain moves (see the module docstring for time).

    * ``chain`` (objective 3): at ``frame(k)``, with the clock of move k, the drift must be the
      per-step drift ``(frame(k+1) - frame(k)) / (m dt)`` (m RAR iterations make the move);
      zero at an answer.
    * ``flow`` and ``identity`` (objective 2): slot-conditional flow matching along the same
      move, each slot at its own point ``s`` of the way (and its own time ``(k + s) m / H``):
      the same drift; the endpoint it predicts must still look like its slot (identity head,
      frozen here) and point where the slot of ``frame(k+1)`` points.
    * ``read``: the ghost read of the move's start points at its next frame where that is a
      memory frame (:func:`read_term`).
    * ``settle``: the settle gate closed at an answer, open at a move's start
      (:func:`voltx_phases.f3_settle.settle_term`). Every drift above is the gated one RAR runs, so
      the gate learns from them too where a frame must still move: trained as a classifier alone,
      it closed anywhere off the question and fact frames and froze frames halfway (measured:
      89% of dev queries converged, 2% answered).
    * ``denoise`` (objective 1): ``frame(k)`` corrupted (zeroed / noised / shuffled slots); the
      drift must restore ``restore_rate`` of the damage per iteration on top of the move's own
      drift.
    """
    src, dst = moves.src, moves.dst
    n, s, _ = src.shape
    dev, dtype = src.device, src.dtype
    m, dt, horizon, beta = cfg.chain_step_iterations, cfg.rar_dt, float(cfg.rar_max_iterations), cfg.rar_beta
    active = all_active(src) & all_active(dst)
    target = (dst - src) / (m * dt)  # zero for a final item
    u = torch.rand((n, s), generator=gen).to(dev, dtype)
    start = moves.step.to(dtype).unsqueeze(-1) * m / horizon  # [B, 1]
    # an answer is a fixed point whatever the clock says: its time is uniform
    clock = torch.where(moves.final.unsqueeze(-1), u, start.expand(n, s)).clamp(max=1.0)
    velocity = field(reasoner, moves.memory)
    held = moves.memory.held
    chain = _masked_mean((drift(reasoner, velocity, src, clock, active, beta, held) - target).pow(2).sum(-1), active)

    frac = torch.rand((n, s), generator=gen).to(dev, dtype)
    x = F.normalize((1 - frac).unsqueeze(-1) * src + frac.unsqueeze(-1) * dst, dim=-1)
    t = torch.where(moves.final.unsqueeze(-1), u, start + frac * m / horizon).clamp(max=1.0)
    v = drift(reasoner, velocity, x, t, active, beta, held)
    flow = _masked_mean((v - target).pow(2).sum(-1), active)
    endpoint = x + ((1 - frac) * m * dt).unsqueeze(-1) * v
    head = reasoner["identity"].proj
    logits = F.linear(endpoint, head.weight.detach(), head.bias.detach())
    slot_index = torch.arange(s, device=dev).expand(n, s)
    ce = F.cross_entropy(logits.reshape(-1, s), slot_index.reshape(-1), reduction="none").view(n, s)
    identity = _masked_mean(ce * moves.dst_active + (1 - F.cosine_similarity(endpoint, dst, dim=-1)), active)

    corr = corrupt(src, active, gen, cfg)
    restore = cfg.restore_rate * (src - corr.slots) / dt + target
    denoise = _masked_mean((drift(reasoner, velocity, corr.slots, clock, active, beta, held) - restore).pow(2).sum(-1), active)
    id_head = reasoner["identity"].loss(dst, slot_index, moves.dst_active)
    return {"chain": chain, "flow": flow, "identity": identity, "denoise": denoise, "id_head": id_head, "read": read_term(reasoner, moves),
            "settle": settle_term(reasoner["settle"], src, moves.final, active, x,
                                  active & (~moves.final).unsqueeze(-1) & (frac < OPEN_BEFORE), held)}


def read_term(reasoner: nn.ModuleDict, moves: Moves) -> Tensor:
    """The ghost blend of each move's start: its alpha (binary cross-entropy) is 1 where the move's
    next frame is a memory frame (a supporting fact) and 0 elsewhere (a move to an answer, an answer
    standing still), and there its read must point at that frame (cross-entropy of the read's
    scores on its position)."""
    reader = reasoner["memory"]
    has = moves.support >= 0
    gate = F.binary_cross_entropy_with_logits(reader.alpha_logit(moves.src).float(), has.float())
    if not bool(has.any()):
        return gate
    memory = moves.memory.rows(has)
    return gate + F.cross_entropy(reader.logits(moves.src[has], memory).float(), moves.support[has])
