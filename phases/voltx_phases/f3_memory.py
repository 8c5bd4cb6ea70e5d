"""F3's working memory: a story's sentences as frames, in order, and RAR's read of them.

Volt X's tier-0 memory is a FIFO of frames in time order; RAR reasons over it by ghost
attention (the original's ``rar_loop_with_ghosts``). In F3 a bAbI record's input is split
into its story sentences, each encoded (frozen renderer-stage encoder) as its own frame and
stored in order, and the question alone, which is RAR's input frame. The CNN encoder
pooling a whole story into 16 slot means lost "who was where *last*" (README, F3); one frame
a sentence keeps every fact whole.

:class:`MemoryRead` is the ghost attention at the granularity of T0: the frame RAR is moving
asks of every memory frame whether it is the fact it needs (a small MLP on low-rank projections
of the two flattened frames), and the read takes the *newest* frame that answers yes (T0 is
ordered: :func:`newest_match`); the read is the weighted sum of the memory frames, slot by slot.
It enters the drift as the original's ghost blend with a learnt, per-frame alpha
(:meth:`MemoryRead.pull`), beside the velocity field, which also gets the read as an input
(``ScaledVfn(memory_context=True)``). A record without a story (a SCAN command, a single
sentence) has no sentences to read; T0 holds its input instead (:attr:`Memory.held`, ``f3.hold_input``),
and each of its phrases as a frame of its own (:attr:`Memory.phrases`, ``f3.hold_phrases``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
PHRASE_JOINS = ("and", "after")
"""The words a storyless input's phrases are cut at (:func:`command_phrases`): SCAN's two conjunctions."""


def split_story(text: str) -> tuple[list[str], str]:
    """``(story sentences in order, the question)``: the last sentence is the question; a
    text of one sentence (a SCAN command) is all question, with no story (T0 holds it: :attr:`Memory.held`)."""
    parts = [p for p in SENTENCE_END.split(" ".join(text.split())) if p]
    return (parts[:-1], parts[-1]) if parts else ([], text)


def command_phrases(text: str, limit: int) -> list[str]:
    """A storyless input's phrases *in the order written*, cut at the words :data:`PHRASE_JOINS`
    (the joining word itself stays only in the whole input, :attr:`Memory.held`); at most ``limit``,
    the rest joined to the last. ``"walk twice after run"`` -> ``["walk twice", "run"]``: which
    runs first is for the field to read from the held command, not given here."""
    phrases: list[list[str]] = [[]]
    for word in text.split():
        if word in PHRASE_JOINS and phrases[-1] and len(phrases) < limit:
            phrases.append([])
        else:
            phrases[-1].append(word)
    return [" ".join(p) for p in phrases if p]


@dataclass
class Memory:
    """A batch of memories: ``frames [B, N, 16, D]`` (newest last, left-padded) and ``mask [B, N]``;
    ``held [B, 16, D]``: the input frame T0 holds for a record without a story (zero for one with a story).

    Why ``held``: a SCAN chain is command -> parse -> ... -> actions, and a parse's frame is the
    frame of its own text, which says nothing of the rest of the command ("I_JUMP" follows "jump
    twice", "jump thrice and walk", ...): measured on SCAN simple, a field that sees only the
    current text and the move index can at best get 0.6% of the test commands right even when
    its first move is exact (README, F3). The command stays in T0 while RAR moves a copy of its
    frame; with one frame there, the ghost read of T0 is that frame, and the field (and the settle
    gate) read it every iteration (:func:`voltx_phases.f3_model.field`)."""

    frames: Tensor
    mask: Tensor
    held: Tensor | None = None
    phrases: Tensor | None = None
    """``[B, P, 16, D]``: the held input's phrases, one frame each in the order written (:func:`command_phrases`;
    zero past a row's last phrase and for a row with a story), or None.

    Why: with the whole command held, each later move from the *true* frame was right for 29-44% of
    held-out SCAN commands after 1,000 steps (README, F3), 55-84% of training ones: the move
    "I_JUMP I_JUMP" -> "I_JUMP I_JUMP I_WALK" has to find "walk" inside one pooled frame of the whole
    command, where "jump" and "walk" share the slots; a frame per phrase keeps each phrase whole."""

    def rows(self, index: Tensor) -> "Memory":
        """The memories of the batch rows ``index`` (a bool mask or indices)."""
        return Memory(self.frames[index], self.mask[index], None if self.held is None else self.held[index],
                      None if self.phrases is None else self.phrases[index])

    def holding(self, inputs: Tensor) -> "Memory":
        """This memory with T0 holding ``inputs [B, 16, D]`` where a row has no story (zero where it has one);
        its phrases (if any) kept, zero where a row has a story."""
        storyless = (~self.mask.any(-1)).to(inputs.dtype)[:, None, None]
        phrases = None if self.phrases is None else self.phrases * storyless[:, None]
        return Memory(self.frames, self.mask, inputs * storyless, phrases)

    @classmethod
    def empty(cls, like: Tensor) -> "Memory":
        b, s, d = like.shape
        return cls(like.new_zeros(b, 1, s, d), torch.zeros(b, 1, dtype=torch.bool, device=like.device))

    @classmethod
    def gather(cls, bank: Tensor, rows: list[list[int]], limit: int) -> "Memory":
        """Memories of ``rows`` (indices into ``bank [M, 16, D]``, oldest first), each cut to its newest
        ``limit`` frames, right-aligned so position -1 is every row's newest frame."""
        n = max(1, min(limit, max((len(r) for r in rows), default=0)))
        index = torch.zeros(len(rows), n, dtype=torch.long)
        mask = torch.zeros(len(rows), n, dtype=torch.bool)
        for i, r in enumerate(rows):
            kept = r[-n:]
            if kept:
                index[i, n - len(kept):] = torch.tensor(kept)
                mask[i, n - len(kept):] = True
        index, mask = index.to(bank.device), mask.to(bank.device)
        return cls(bank[index] * mask[..., None, None].to(bank.dtype), mask)


def gather_phrases(bank: Tensor, rows: list[list[int]], limit: int) -> Tensor | None:
    """``[B, limit, 16, D]``: the frames of ``rows`` (indices into ``bank [M, 16, D]``, per record its
    phrases in order), zero past each row's last; None where no row has a phrase or ``limit`` is 0."""
    if not limit or not any(rows):
        return None
    index = torch.zeros(len(rows), limit, dtype=torch.long)
    mask = torch.zeros(len(rows), limit, dtype=torch.bool)
    for i, r in enumerate(rows):
        index[i, : len(r[:limit])] = torch.tensor(r[:limit], dtype=torch.long)
        mask[i, : len(r[:limit])] = True
    index, mask = index.to(bank.device), mask.to(bank.device)
    return bank[index] * mask[..., None, None].to(bank.dtype)


class PhraseRead(nn.Module):
    """The held phrases (:attr:`Memory.phrases`) as one frame the field reads beside the held command:
    a learnt slot-wise map per phrase position, summed (``sum_p phrases[:, p] @ maps[p]``). The field's
    read projects the sum linearly, so each position keeps its own projection (phrase 1 is not
    confused with phrase 2). Zero at the start: an untrained field reads no phrase (and draws no
    random numbers, so runs without phrases initialise as before)."""

    def __init__(self, phrases: int, dim: int):
        super().__init__()
        self.maps = nn.Parameter(torch.zeros(phrases, dim, dim))

    def forward(self, phrases: Tensor) -> Tensor:
        return torch.einsum("bpsd,pde->bse", phrases[:, : self.maps.shape[0]], self.maps.to(phrases.dtype)[: phrases.shape[1]])


def newest_match(scores: Tensor, mask: Tensor) -> Tensor:
    """Log weights ``[B, N]`` of "the newest frame that matches": frame n matches with
    ``p_n = sigmoid(scores_n)`` and is read if no newer frame matched, ``w_n = p_n prod_{k > n} (1 - p_k)``
    (positions oldest first, masked ones skipped; the weights sum to at most 1).

    Why: bAbI's supporting fact is the newest mention of what the question asks about ("who was where
    *last*"). A learnt recency score added to a match score (the read before this one) has to trade
    the two off story by story: measured, its read picked the right sentence for 75% of held-out qa1
    questions and 83% of training ones after the preset's 570 steps. Here the match only has to say
    "this fact is about that", the order does the rest: 91% held-out with the same steps."""
    s = scores.float()
    yes = F.logsigmoid(s).masked_fill(~mask, 0.0)
    no = F.logsigmoid(-s).masked_fill(~mask, 0.0)
    newer = no.flip(-1).cumsum(-1).flip(-1) - no  # sum over k > n of log(1 - p_k)
    return (yes + newer).masked_fill(~mask, torch.finfo(s.dtype).min).to(scores.dtype)


ORDER_FEATURES = ("newer", "self")


def relative_order(x: Tensor, memory: Memory) -> Tensor:
    """``[B, N, 2]``: per memory frame, whether it is newer than the frame ``x`` sits at in T0 and
    whether it is that frame. Where ``x`` sits is the memory frame it is nearest (cosine of the
    flattened frames; the newest of equals): a frame RAR has moved onto a story sentence is at
    that sentence's place in time. A question (in no story) sits wherever it is nearest; the
    match learns from its content to ignore these two inputs there.

    Why: a later hop's fact is found relative to the fact being read from, which content alone
    cannot say. qa2's "John dropped the apple." needs John's place *before* the drop (the newest
    John move older than it), not his newest place; qa3's "the place before" is the carrier's move
    older than his last one. Measured before: from the true object fact, the newest-match read
    picked the carrier's place for 68% of "grabbed" and 40% of "dropped" facts (README, F3)."""
    n = memory.mask.shape[1]
    cos = torch.einsum("bd,bnd->bn", F.normalize(x.flatten(1).float(), dim=-1), F.normalize(memory.frames.flatten(-2).float(), dim=-1))
    newest_first = torch.arange(n, device=x.device, dtype=cos.dtype) * 1e-6  # ties: the newest copy
    at = (cos + newest_first).masked_fill(~memory.mask, -3.0).argmax(-1)  # [B]
    where = torch.arange(n, device=x.device)
    return torch.stack([where > at[:, None], where == at[:, None]], -1).float().detach()


class MemoryRead(nn.Module):
    """Frame-level ghost attention over T0 (module docstring) and its blend.

    ``keys(memory)`` once per memory (a RAR run or a training batch), then per frame ``x``:
    ``logits(x, memory, keys) [B, N]`` (log weights of :func:`newest_match`), ``read [B, 16, D]`` and
    ``alpha [B, 1, 1]`` in (0, 1), the frame's own blend weight of the ghost read (the original's
    ``msg = (1-a) slot_msg + a ghost_msg`` with ``a`` learnt per frame: a question pulls its
    supporting fact, a fact or an answer does not). ``pull(x, memory, keys)`` is that blend as a
    drift, ``alpha (read - x) / (m dt)``: a chain move of m RAR iterations (``rate = 1 / (m dt)``).

    The match of ``x`` and a memory frame ``k`` is an MLP on ``[q * k', |q - k'|]`` of their
    rank-``rank`` projections and on ``k``'s place in time relative to ``x`` (:func:`relative_order`):
    "is this fact about what I ask" is no dot product of the two frames
    (measured on the quick preset's frames, read-only training of 570 steps: a low-rank bilinear
    score 75% of held-out qa1 reads, the same score under :func:`newest_match` 74%, the MLP 87%
    with a learnt recency score and 91-94% under :func:`newest_match`, rank and hidden 64-128).

    alpha is a small MLP on the query's projection, not a linear map of the flattened frame: the
    linear gate learnt "a question pulls, a fact does not" but not "a fact about an object (qa2 /
    qa3's "John grabbed the apple there.") pulls its carrier's place": measured on the preset's
    dev questions, alpha at those facts was 0.01-0.06 (0.03-0.65 on training ones), so RAR never
    made the second hop; with the MLP 1.00, and the quick preset's test qa1 went from 76.7% to
    86.7%, qa2 from 36.7% to 40.0% (400 dev qa1 questions: 84.0% to 89.2%).
    """

    def __init__(self, slots: int, dim: int, rate: float, rank: int = 128, hidden: int = 128):
        super().__init__()
        self.query = nn.Linear(slots * dim, rank)
        self.key = nn.Linear(slots * dim, rank)
        self.match = nn.Sequential(nn.Linear(2 * rank + len(ORDER_FEATURES), hidden), nn.GELU(), nn.Linear(hidden, 1))
        # a memory frame starts as a probable non-match (p ~ 0.12): the newest frame does not
        # take every read before the match has learnt anything
        nn.init.constant_(self.match[-1].bias, -2.0)
        self.gate = nn.Sequential(nn.Linear(rank, hidden), nn.GELU(), nn.Linear(hidden, 1))  # on the query's projection
        # alpha starts ~0 (last weight 0, bias -8): the untrained field is the identity, F3's ablation
        nn.init.zeros_(self.gate[-1].weight)
        nn.init.constant_(self.gate[-1].bias, -8.0)
        self.register_buffer("rate", torch.tensor(float(rate)))

    def keys(self, memory: Memory) -> Tensor:
        return self.key(memory.frames.flatten(-2))  # [B, N, r]

    def logits(self, x: Tensor, memory: Memory, keys: Tensor | None = None) -> Tensor:
        keys = self.keys(memory) if keys is None else keys
        q = self.query(x.flatten(-2)).unsqueeze(1).expand_as(keys)  # [B, N, r]
        scores = self.match(torch.cat([q * keys, (q - keys).abs(), relative_order(x, memory).to(keys.dtype)], -1)).squeeze(-1)
        return newest_match(scores, memory.mask)

    def alpha_logit(self, x: Tensor) -> Tensor:
        return self.gate(self.query(x.flatten(-2))).squeeze(-1)  # [B]

    def pull(self, x: Tensor, memory: Memory, keys: Tensor | None = None) -> Tensor:
        weights = self.logits(x, memory, keys).softmax(-1) * memory.mask.to(x.dtype)  # an empty memory reads zero
        read = torch.einsum("bn,bnsd->bsd", weights, memory.frames)
        alpha = torch.sigmoid(self.alpha_logit(x)) * memory.mask.any(-1).to(x.dtype)
        return alpha[:, None, None] * (read - x) * self.rate
