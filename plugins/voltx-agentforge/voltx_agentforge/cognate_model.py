"""The Cognate model: a recurrent-refinement transformer with an adaptive halting head and a gated memory.

The plan's "TRM x Titans-MAG" (phases/phase1/LOGICAL_UNDERSTANDING.md), written small:

* **Recurrent refinement** (TRM): one core of ``layers`` causal transformer blocks is applied
  up to ``refine_steps`` times to the state, the embedded input re-injected each time
  (``h = core(h + x)``), so depth is spent per token as needed instead of fixed.
* **Adaptive computation** (PonderNet, Banino et al. 2021): after each refinement a halting head
  gives each token the probability of stopping there; the probabilities of halting at step n
  (``p_n = lambda_n * prod(1 - lambda_j)``, the last step takes the rest) weight the per-step
  losses, and a KL term (the ponder cost) pulls them toward a geometric prior whose rate is the
  specialisation's (``halt_prior``: 0.9 halts early, 0.2 thinks long). At inference a token's answer is read at
  its median halting step, and refinement stops once every token has passed it. ``halting=False``
  (an ablation) runs every step and reads the last; ``refinement=False`` (another) runs one step
  only. The phase's loss adds every step's own loss (TRM's deep supervision). (Graves' ACT was tried first: the quick preset's models learned to
  halt after one step within 100 optimizer steps, whatever the ponder cost, and never used
  depth again; so did PonderNet without deep supervision.)
* **Gated long-term memory** (Titans' memory-as-gate, with persistent memory slots): after the
  core, each token reads ``memory_slots`` learned slots, and a sigmoid gate decides how much of
  the read enters the state: ``h = h + g * read``. The mean gate is the model's memory use;
  ``memory=False`` (the ablation) closes the gate. Titans' test-time-updated neural memory is
  left out: the slots are trained weights. Two reads: by attention (``memory_ngram = 0``: the
  state's query against the slots), or a **lookup** (``memory_ngram = n``, Engram-style hashed
  n-gram memory): each token reads the one slot its last ``n`` bytes hash to. The attention read
  stayed unused in every measured setting (README, "Measured"): the core learned the facts
  first; the lookup, a row per key reached in one step, holds them when they outnumber what the
  core stores quickly (with a higher learning rate of its own, ``memory_lr_mult``).

Tokens are bytes (ids 0-255) plus four specials, so any text encodes without a trained
tokenizer and a model's config JSON alone rebuilds it (the artifact contract, docs in README).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

PAD, BOS, EOS, SEP = 256, 257, 258, 259
VOCAB = 260


@dataclass(frozen=True)
class CognateArgs:
    """Everything that rebuilds a Cognate model (saved as its config JSON)."""

    d_model: int
    heads: int
    layers: int
    refine_steps: int
    memory_slots: int
    max_len: int
    ff_mult: int = 4
    memory_gate_bias: float = 0.0
    halt_bias: float = -1.0
    vocab: int = VOCAB
    memory_ngram: int = 0
    """0: the memory is read by attention; n > 0: each token reads the slot its last n bytes hash to."""

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    """Pre-norm causal self-attention + MLP."""

    def __init__(self, d: int, heads: int, ff_mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ff_mult * d), nn.GELU(), nn.Linear(ff_mult * d, d))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return h + self.ff(self.norm2(h))


HASH_PRIME = 1_000_003
BYTE_BITS = 9
"""Bits per token id in an n-gram's key (ids < 260 < 2^9; 511 marks 'before the start')."""


def ngram_slots(ids: torch.Tensor, n: int, slots: int) -> torch.Tensor:
    """Per token, the slot its last ``n`` tokens (itself included) hash to: their ids packed into
    one integer (exact for n <= 6), reduced mod a prime, then mod ``slots``."""
    key = torch.zeros_like(ids)
    for k in range(n):
        earlier = F.pad(ids, (k, 0), value=(1 << BYTE_BITS) - 1)[:, :ids.shape[1]]
        key = (key << BYTE_BITS) | earlier
    return key % HASH_PRIME % slots


class GatedMemory(nn.Module):
    """Learned memory slots, read by attention or by an n-gram lookup, let in through a sigmoid gate (memory-as-gate)."""

    def __init__(self, d: int, slots: int, gate_bias: float, ngram: int = 0) -> None:
        super().__init__()
        self.ngram = ngram
        self.slots = nn.Parameter(torch.randn(slots, d) / math.sqrt(d))
        self.query = nn.Linear(d, d, bias=False) if not ngram else None
        self.gate = nn.Linear(2 * d, 1)
        nn.init.constant_(self.gate.bias, gate_bias)
        self.norm = nn.LayerNorm(d)

    def forward(self, h: torch.Tensor, enabled: bool = True, keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``keys``: each token's slot (:func:`ngram_slots`), for the lookup read."""
        x = self.norm(h)
        if self.ngram:
            read = self.slots[keys]
        else:
            read = torch.softmax(self.query(x) @ self.slots.T / math.sqrt(x.shape[-1]), dim=-1) @ self.slots
        g = torch.sigmoid(self.gate(torch.cat([x, read], dim=-1)))
        if not enabled:
            g = torch.zeros_like(g)
        return h + g * read, g.squeeze(-1)


class CognateNet(nn.Module):
    """Byte-level causal LM with recurrent refinement, adaptive halting and gated memory."""

    def __init__(self, args: CognateArgs) -> None:
        super().__init__()
        if args.d_model % args.heads:
            raise ValueError(f"d_model {args.d_model} is not a multiple of heads {args.heads}")
        self.args = args
        d = args.d_model
        self.embed = nn.Embedding(args.vocab, d)
        self.pos = nn.Embedding(args.max_len, d)
        self.core = nn.ModuleList(Block(d, args.heads, args.ff_mult) for _ in range(args.layers))
        if not 0 <= args.memory_ngram <= 6:
            raise ValueError(f"memory_ngram {args.memory_ngram}: 0 (attention read) or 1-6 bytes")
        self.memory = GatedMemory(d, args.memory_slots, args.memory_gate_bias, args.memory_ngram)
        self.halt = nn.Linear(d, 1)
        nn.init.constant_(self.halt.bias, args.halt_bias)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, args.vocab, bias=False)
        self.checkpointing = False
        """Recompute the core's blocks in the backward pass (sizing's memory strategy when activations do not fit)."""

    def refine(self, h: torch.Tensor, x: torch.Tensor, memory: bool,
               keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = h + x
        for block in self.core:
            if self.checkpointing and self.training:
                h = torch.utils.checkpoint.checkpoint(block, h, use_reentrant=False)
            else:
                h = block(h)
        return self.memory(h, memory, keys)

    def forward(self, ids: torch.Tensor, *, halting: bool = True, memory: bool = True,
                refinement: bool = True) -> dict[str, torch.Tensor]:
        """Per token: ``logits`` [B, T, V] at its median halting step (the last with ``halting=False``),
        ``steps`` (expected refinements), ``gate`` (expected memory gate), and for training
        ``step_logits`` [N, B, T, V] and ``halt_probs`` [N, B, T] of the N steps run.
        ``refinement=False`` (an ablation) runs one step only: the core's depth, once."""
        b, t = ids.shape
        x = self.embed(ids) + self.pos(torch.arange(t, device=ids.device))
        h = torch.zeros_like(x)
        keys = ngram_slots(ids, self.args.memory_ngram, self.args.memory_slots) if self.args.memory_ngram else None
        most = self.args.refine_steps if refinement else 1
        last = most - 1
        going = torch.ones(b, t, device=ids.device)  # probability of not having halted yet
        probs, logits, gates = [], [], []
        for n in range(most):
            h, gate = self.refine(h, x, memory, keys)
            lam = torch.sigmoid(self.halt(h)).squeeze(-1) if n < last else torch.ones(b, t, device=ids.device)
            probs.append(going * lam)
            logits.append(self.head(self.norm(h)))
            gates.append(gate)
            going = going * (1.0 - lam)
            if halting and not self.training and n < last and bool((going <= 0.5).all()):
                break  # every token is past its median halting step: later steps cannot change an answer
        p = torch.stack(probs)
        step_logits, gate_steps = torch.stack(logits), torch.stack(gates)
        p_norm = p / p.sum(0, keepdim=True)  # the steps run (all of them in training)
        n_idx = torch.arange(1, len(probs) + 1, device=ids.device, dtype=p.dtype).view(-1, 1, 1)
        if halting:
            median = ((p.cumsum(0) < 0.5).sum(0)).clamp(max=len(probs) - 1)  # first step where half the mass is spent
            read = step_logits.gather(0, median.view(1, b, t, 1).expand(1, b, t, step_logits.shape[-1])).squeeze(0)
            steps = (p_norm * n_idx).sum(0)
        else:
            read, steps = step_logits[-1], torch.full((b, t), float(len(probs)), device=ids.device)
        return {"logits": read, "steps": steps, "gate": (p_norm * gate_steps).sum(0),
                "step_logits": step_logits, "halt_probs": p}


def geometric_prior(rate: float, steps: int) -> torch.Tensor:
    """PonderNet's prior over halting steps 1..steps: ``rate * (1 - rate)^(n-1)``, the last step
    taking the rest, as the model's own halting does (its last step halts for sure): the
    distribution of a model that halts with probability ``rate`` at every step. (Normalising the
    truncated geometric instead would pull a 4-step model toward 2.2 steps at rate 0.2 -- less
    than an untrained halting head spends.)"""
    g = rate * (1.0 - rate) ** torch.arange(steps, dtype=torch.float32)
    g[-1] = (1.0 - rate) ** (steps - 1)
    return g


def encode(text: str, limit: int) -> list[int]:
    """UTF-8 bytes of ``text``, the last ``limit`` kept."""
    return list(text.encode("utf-8"))[-limit:]


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
