"""Evaluation of phase F1 (lexical grounding): every figure beside the strongest method that
needs no trained component, on the same inputs.

* slot accuracy of the role head, beside the majority label of the training tokens;
* STS Spearman of summary cosines, beside word-overlap (Jaccard) similarity;
* dog~canine cosine of the Agent slot over probe sentences, beside dog~unrelated agents (the
  verdict's baseline) and dog~other animals (for reference);
* slot filling: one slot's filler word(s) are cut out of the sentence (:func:`f1_data.mask_slot_text`),
  the rest is encoded and the slot filler restores the slot by RAR from the context slots; right
  when the restored vector is closer to the sentence's original slot than to the same slot of up
  to ``eval_candidates - 1`` other sentences with other fillers. Baselines: the normalised mean of
  the context slots (no model), chance; ablation: the slot prior alone (VFN off).

Run on the dev split every epoch and on the test split once after training (the judged figures).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from voltx.engine.frame import MAX_SLOTS
from voltx.engine.rar import RarConfig, RarResult
from voltx.engine.tokenizer import PAD_ID, encode_batch, pad_rows

from .f1_data import (
    IGNORE, PROBE_SAME_CLASS, PROBE_SYNONYM, PROBE_UNRELATED, PROBE_WORD, ParaItem, SrlItem, chunks, collate_srl,
    mask_slot_text, probe_sentences, word_overlap,
)
from .rar_telemetry import certainty, rar_event

EVAL_RAR_ITERATIONS = 30
EVAL_BATCH = 128


@dataclass(frozen=True)
class FillQuery:
    """One slot-filling question: sentence ``item`` with slot ``slot`` cut out of its text."""

    item: int
    slot: int
    candidates: tuple[int, ...]
    """Other sentences annotated with the same slot (the retrieval pool)."""
    text: str
    """The sentence without the slot's words."""
    ids: tuple[int, ...]


@dataclass
class EvalSet:
    """One evaluation split (dev or test): sentences, scored pairs and slot-filling questions."""

    name: str
    items: list[SrlItem]
    pairs: list[ParaItem]
    pair_records: list[dict]
    queries: list[FillQuery]


def fill_queries(tok, items: list[SrlItem], max_len: int, candidates: int, limit: int, seed: int) -> list[FillQuery]:
    """Up to ``limit`` questions, fixed for the run (seeded) so every evaluation answers the same
    ones: a gold-annotated slot of a sentence with at least two, its text without the slot's words."""
    rng = random.Random(seed)
    by_slot: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        for r in it.fillers:
            by_slot.setdefault(r, []).append(i)
    pairs = [(i, r) for i, it in enumerate(items) for r in sorted(it.fillers) if len(it.fillers) >= 2]
    rng.shuffle(pairs)
    picked = []
    for i, r in pairs[:limit]:
        pool = [j for j in by_slot[r] if j != i]
        picked.append((i, r, tuple(rng.sample(pool, min(len(pool), candidates - 1)))))
    texts = [mask_slot_text(items[i].text, items[i].spans, r) for i, r, _ in picked]
    encodings = tok.encode_batch(texts, add_special_tokens=False) if texts else []
    return [FillQuery(i, r, cands, text, tuple(enc.ids[:max_len])) for (i, r, cands), text, enc in zip(picked, texts, encodings)
            if enc.ids]


def retrieved(vec: Tensor, pool: Tensor) -> bool:
    """True when ``vec`` is strictly closer (cosine) to ``pool[0]`` than to every other row."""
    cos = F.cosine_similarity(vec.unsqueeze(0), pool, dim=-1)
    return pool.shape[0] == 1 or bool(cos[0] > cos[1:].max())


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(y)) < 2 or len(set(x)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)


def context_mean(frames: Tensor, context: Tensor) -> Tensor:
    """The no-model slot filler: the normalised mean of each frame's ``context`` slots (zero when none)."""
    return F.normalize((frames * context.unsqueeze(-1).to(frames.dtype)).sum(1), dim=-1)


class GroundingEval:
    """Evaluates the encoder and slot filler of the grounding stage on an :class:`EvalSet`."""

    def __init__(self, ctx, cfg, tok, encoder, filler, majority: int):
        self.ctx, self.cfg, self.tok, self.device = ctx, cfg, tok, ctx.device
        self.encoder, self.filler, self.majority = encoder, filler, majority

    def frames(self, items: list[SrlItem]):
        """Role accuracy, majority-label accuracy, slot frames and active masks of sentences."""
        correct = majority = total = 0
        frames, actives = [], []
        for part in chunks(items, EVAL_BATCH):
            ids, mask, labels, _ = (t.to(self.device) for t in collate_srl(part))
            out = self.encoder(ids, mask)
            valid = labels.ne(IGNORE)
            correct += int((out.role_logits.argmax(-1).eq(labels) & valid).sum())
            majority += int((labels.eq(self.majority) & valid).sum())
            total += int(valid.sum())
            f, a = self.encoder.slot_context(out, mask)
            frames.append(f)
            actives.append(a)
        return correct / max(1, total), majority / max(1, total), torch.cat(frames), torch.cat(actives)

    def summaries(self, rows: list[list[int]]) -> Tensor:
        out = []
        for part in chunks(rows, EVAL_BATCH):
            ids, mask = pad_rows(part, PAD_ID)
            out.append(self.encoder(ids.to(self.device), mask.to(self.device)).summary)
        return torch.cat(out)

    def agent(self, word: str) -> Tensor:
        ids, mask = (t.to(self.device) for t in encode_batch(self.tok, probe_sentences(word), self.cfg.max_seq_len))
        frames, _ = self.encoder.slot_context(self.encoder(ids, mask), mask)
        return frames[:, 0]

    def slot_fill(self, data: EvalSet, frames: Tensor, active: Tensor) -> dict[str, float]:
        on_host = active.cpu()  # looked up per query and candidate: no device sync each time
        queries = [q for q in data.queries if on_host[q.item, q.slot]]
        keys = ("slot_fill_accuracy", "slot_fill_chance", "slot_fill_prior_accuracy", "slot_fill_context_mean",
                "slot_fill_accuracy_at_horizon")
        if not queries:
            return {**dict.fromkeys(keys, 0.0), "slot_fill_queries": 0}
        config = RarConfig(max_iterations=EVAL_RAR_ITERATIONS)
        horizon = RarConfig(max_iterations=self.cfg.fill_iterations, epsilon=0.0)
        prior = F.normalize(self.filler.prior, dim=-1)
        hits = dict.fromkeys(keys, 0.0)
        results, masks = [], []
        for part in chunks(queries, EVAL_BATCH):
            ids, mask = (t.to(self.device) for t in pad_rows([list(q.ids) for q in part], PAD_ID))
            context, context_active = self.encoder.slot_context(self.encoder(ids, mask), mask)
            slot = torch.tensor([q.slot for q in part], device=self.device)
            masked = F.one_hot(slot, MAX_SLOTS).bool()
            act = context_active & ~masked
            result = self.filler.fill(context, act, masked, config, self.cfg.fill_iterations, differentiable=False)
            results.append(result)
            masks.append(masked)
            # The same questions stopped where training's unroll stops: running on to 30 iterations
            # can drift past the fill (the gap between the two figures shows it).
            short = self.filler.fill(context, act, masked, horizon, self.cfg.fill_iterations, differentiable=False)
            rows = torch.arange(len(part), device=self.device)
            refined, at_horizon, mean = result.slots[rows, slot], short.slots[rows, slot], context_mean(context, act)
            for n, q in enumerate(part):
                own = data.items[q.item].fillers[q.slot]
                # A candidate with the same filler is no competitor (ties with identical fillers count as correct).
                others = [j for j in q.candidates if data.items[j].fillers[q.slot] != own and bool(on_host[j, q.slot])]
                pool = frames[[q.item, *others], q.slot]  # the sentence's original slot first
                hits["slot_fill_chance"] += 1.0 / (1 + len(others))
                hits["slot_fill_accuracy"] += retrieved(refined[n], pool)
                hits["slot_fill_prior_accuracy"] += retrieved(prior[q.slot], pool)
                hits["slot_fill_context_mean"] += retrieved(mean[n], pool)
                hits["slot_fill_accuracy_at_horizon"] += retrieved(at_horizon[n], pool)
        merged = RarResult(*(torch.cat([getattr(r, f) for r in results]) if getattr(results[0], f) is not None else None
                             for f in RarResult._fields))
        masked_all = torch.cat(masks)
        rar_event(self.ctx, merged, masked_all, certainty(merged, masked_all, config.epsilon), config.max_iterations,
                  stage="grounding")
        return {**{k: v / len(queries) for k, v in hits.items()}, "slot_fill_queries": len(queries)}

    def __call__(self, data: EvalSet) -> dict[str, float]:
        acc, majority, frames, active = self.frames(data.items)
        sa = self.summaries([p.a for p in data.pairs])
        sb = self.summaries([p.b for p in data.pairs])
        sims = F.cosine_similarity(sa, sb, dim=-1).tolist()
        targets = [p.target for p in data.pairs]
        overlap = [word_overlap(r["a"], r["b"]) for r in data.pair_records]
        dog = self.agent(PROBE_WORD)

        def to_dog(words) -> float:
            return float(torch.stack([F.cosine_similarity(dog, self.agent(w), dim=-1) for w in words]).mean())

        return {
            "slot_accuracy": acc,
            "slot_accuracy_majority": majority,
            "sts_spearman": spearman(sims, targets),
            "sts_spearman_word_overlap": spearman(overlap, targets),
            "dog_canine_agent_cosine": to_dog([PROBE_SYNONYM]),
            "agent_cosine_unrelated": to_dog(PROBE_UNRELATED),
            "agent_cosine_same_class": to_dog(PROBE_SAME_CLASS),
            **self.slot_fill(data, frames, active),
        }
