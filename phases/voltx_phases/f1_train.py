"""Training code of phase F1, lexical grounding (imported only when the phase runs).

Stages, each resumable through the shared loop:
1. tokenizer: byte-level BPE on every training text (SRL sentences, both paraphrase sides)
   -> lang_tokenizer.json (a resumed run reloads it).
2. grounding: one ``fit`` over the CNN frame encoder and the slot filler (time-conditioned
   VFN + slot attention + a learned prior per slot). Per step, on an SRL batch and a
   paraphrase batch drawn with the stage's generator:
   slot_weight * role cross-entropy on the tokens the annotations label
   + contrastive_weight * symmetric InfoNCE(tau) between paraphrase summaries (pairs with
     label 1 or score >= 4; every b of the batch is a negative)
   + slot_fill_weight * (1 - cos) of masked gold slots refined by differentiable RAR from
     the slot prior, the rest of the frame frozen as context. The frames are detached:
     filling trains the VFN on the encoder's frames and gives the encoder no reason to
     make its slots predictable by making them alike.
   -> lang_encoder.safetensors, slot_filler.safetensors
3. decoder: renders the sentence from the frozen encoder's 16 slot vectors (the context
   it decodes from at inference; :mod:`voltx_phases.decoder_stage`, shared with the
   translator) -> lang_decoder.safetensors
"""

from __future__ import annotations

import random
from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx import artifacts
from voltx.engine.attention import SlotAttention, language_bias
from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.frame import MAX_SLOTS, SLOT_DIM
from voltx.engine.rar import RarConfig, RarResult, rar
from voltx.engine.tokenizer import PAD_ID, encode_batch, load_tokenizer, pad_rows, save_tokenizer
from voltx.engine.vfn import Vfn
from voltx.errors import DataError
from voltx.train.batches import steps_per_epoch
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage

from . import lang_stack
from .f1 import F1Config
from .f1_data import (
    IGNORE, PROBE_SYNONYM, PROBE_UNRELATED, PROBE_WORD, SrlItem, chunks, collate_pairs, collate_srl, encode_pairs,
    encode_srl, probe_sentences, split_sources, word_overlap,
)
from .rar_telemetry import certainty, rar_event, rar_summary
from .decoder_stage import train_decoder

SLOT_FILLER = "slot_filler.safetensors"
EVAL_RAR_ITERATIONS = 30
EVAL_BATCH = 128


class SlotFiller(nn.Module):
    """What fills a masked slot through RAR: the VFN (drift), the slot attention (messages
    from the frozen context slots) and a learned start vector per slot, so the query of an
    empty slot is already role-specific."""

    def __init__(self, hidden: int, dim: int = SLOT_DIM):
        super().__init__()
        self.hidden, self.dim = hidden, dim
        self.vfn = Vfn(dim, hidden, time_conditioned=True)
        self.attention = SlotAttention(dim)
        self.prior = nn.Parameter(torch.randn(MAX_SLOTS, dim) * dim ** -0.5)
        self.register_buffer("bias", language_bias(), persistent=False)

    def fill(self, frames: Tensor, active: Tensor, masked: Tensor, config: RarConfig, horizon: int,
             differentiable: bool) -> RarResult:
        """Start the ``masked`` slots at the prior and refine them with the other active slots frozen.

        Time is ``iterations / horizon`` capped at the last step training unrolled: the VFN
        is time-conditioned on high frequencies and has only seen those times."""
        prior = F.normalize(self.prior, dim=-1).to(frames.dtype).expand_as(frames)
        start = torch.where(masked.unsqueeze(-1), prior, frames)
        cap = max(0, horizon - 1)

        def time(step: int, iterations: Tensor) -> Tensor:
            return iterations.clamp(max=cap).to(frames.dtype) / horizon

        return rar(start, active | masked, self.vfn, self.attention, config, bias=self.bias,
                   frozen=active & ~masked, time=time, differentiable=differentiable)


def choose_masks(gold: Tensor, active: Tensor, ratio: float, generator: torch.Generator) -> Tensor:
    """Per frame, ``ratio`` of its gold-annotated active slots (at least one), chosen at random;
    none in a frame with fewer than two active slots (nothing left to infer from)."""
    candidates = gold & active
    count = candidates.sum(-1)
    k = (count.float() * ratio).round().long().clamp_min(1)
    k = torch.where(active.sum(-1) >= 2, torch.minimum(k, count), torch.zeros_like(k))
    scores = torch.rand(gold.shape, generator=generator).to(gold.device).masked_fill(~candidates, 2.0)
    rank = scores.argsort(-1).argsort(-1)
    return candidates & (rank < k.unsqueeze(-1))


def role_terms(out, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy and accuracy of the role head over the labelled tokens."""
    loss = F.cross_entropy(out.role_logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    valid = labels.ne(IGNORE)
    acc = (out.role_logits.argmax(-1).eq(labels) & valid).sum() / valid.sum().clamp_min(1)
    return loss, acc


def contrastive_terms(sa: Tensor, sb: Tensor, positive: Tensor, tau: float) -> tuple[Tensor, Tensor]:
    """Symmetric InfoNCE of the positive pairs against every pair of the batch, and top-1."""
    rows = positive.nonzero().squeeze(-1)
    if rows.numel() == 0:
        zero = (sa.sum() + sb.sum()) * 0.0
        return zero, zero.detach()
    ab = sa[rows] @ sb.T / tau
    ba = sb[rows] @ sa.T / tau
    loss = (F.cross_entropy(ab, rows) + F.cross_entropy(ba, rows)) / 2
    top1 = (ab.argmax(-1) == rows).float().mean()
    return loss, top1


def _stack(a: Tensor, am: Tensor, b: Tensor, bm: Tensor) -> tuple[Tensor, Tensor]:
    """Both sides of the pairs as one right-padded batch (the encoder is padding-invariant)."""
    width = max(a.shape[1], b.shape[1])
    ids = torch.cat([F.pad(a, (0, width - a.shape[1]), value=PAD_ID), F.pad(b, (0, width - b.shape[1]), value=PAD_ID)])
    mask = torch.cat([F.pad(am, (0, width - am.shape[1]), value=False), F.pad(bm, (0, width - bm.shape[1]), value=False)])
    return ids, mask


def _retrieved(vec: Tensor, pool: Tensor) -> bool:
    """True when ``vec`` is strictly closer (cosine) to ``pool[0]`` than to every other row."""
    cos = F.cosine_similarity(vec.unsqueeze(0), pool, dim=-1)
    return pool.shape[0] == 1 or bool(cos[0] > cos[1:].max())


def spearman(x: list[float], y: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3 or len(set(y)) < 2 or len(set(x)) < 2:
        return 0.0
    return float(spearmanr(x, y).statistic)


# --- data ---------------------------------------------------------------------------------------


def load_data(ctx: RunContext, cfg: F1Config):
    seed = ctx.config.run.seed
    srl_train, srl_held = split_sources(cfg.srl_data, cfg.srl_eval, "slot_annotated", key="f1.srl_data",
                                        eval_key="f1.srl_eval", example="srl_gen", valid_fraction=cfg.valid_fraction, seed=seed)
    para_train, para_held = split_sources(cfg.paraphrase_data, cfg.paraphrase_eval, "paraphrase", key="f1.paraphrase_data",
                                          eval_key="f1.paraphrase_eval", example="paraphrase_gen",
                                          valid_fraction=cfg.valid_fraction, seed=seed)
    if cfg.max_examples:
        srl_train, para_train = srl_train[:cfg.max_examples], para_train[:cfg.max_examples]
    if cfg.eval_max_examples:
        srl_held, para_held = srl_held[:cfg.eval_max_examples], para_held[:cfg.eval_max_examples]
    ctx.say(f"Data: {len(srl_train)} train / {len(srl_held)} held-out slot-annotated sentences; "
            f"{len(para_train)} train / {len(para_held)} held-out paraphrase pairs")
    ctx.run.event("data", srl_train=len(srl_train), srl_eval=len(srl_held), paraphrase_train=len(para_train),
                  paraphrase_eval=len(para_held))
    return srl_train, srl_held, para_train, para_held


def tokenizer_stage(ctx: RunContext, cfg: F1Config, texts: list[str]):
    artifact = ctx.artifact(lang_stack.LANG_TOKENIZER)
    if artifact.exists():  # resumed run: the stage already finished; keep its exact tokenizer
        return load_tokenizer(artifact)
    texts = texts + lang_stack.corpus_texts(cfg.tokenizer_corpus)  # in a curriculum: the later phases' words
    ctx.say(f"Training BPE tokenizer: {len(texts)} texts, vocab {cfg.vocab_size}"
            + (f" (with f1.tokenizer_corpus: {', '.join(cfg.tokenizer_corpus)})" if cfg.tokenizer_corpus else ""))
    ctx.run.event("stage_start", stage="tokenizer", step=ctx.global_step, texts=len(texts))
    tok = lang_stack.train_tokenizer(texts, cfg.vocab_size)
    save_tokenizer(tok, artifact)
    ctx.say(f"Tokenizer saved: {artifact} (vocab {tok.get_vocab_size()})")
    ctx.mark_stage_done("tokenizer")
    return tok


def encode_all(ctx: RunContext, tok, cfg: F1Config, srl_train, srl_held, para_train, para_held):
    train_items, unmatched = encode_srl(tok, srl_train, cfg.max_seq_len)
    held_items, held_unmatched = encode_srl(tok, srl_held, cfg.max_seq_len)
    if unmatched or held_unmatched:
        ctx.say(f"Note: {unmatched} training and {held_unmatched} held-out slot-annotated records name no slot word "
                f"found in their text (within {cfg.max_seq_len} tokens); skipped")
        ctx.run.event("skipped_records", reason="no slot word found in the text", train=unmatched, eval=held_unmatched)
    if len(train_items) < 2 or not held_items:
        raise DataError(f"f1.srl_data: only {len(train_items)} training / {len(held_items)} held-out sentences have a slot "
                        "word in their text; slots must be head words of the sentence (\"S0\": \"dog\")")
    return train_items, held_items, encode_pairs(tok, para_train, cfg.max_seq_len), encode_pairs(tok, para_held, cfg.max_seq_len)


# --- grounding ----------------------------------------------------------------------------------


class Grounding:
    """The grounding stage's model, step and evaluation (kept together: they share state)."""

    def __init__(self, ctx: RunContext, cfg: F1Config, tok, encoder: CnnFrameEncoder, filler: SlotFiller,
                 train_items: list[SrlItem], held_items: list[SrlItem], para_train, para_held, para_held_records):
        self.ctx, self.cfg, self.tok, self.device = ctx, cfg, tok, ctx.device
        self.encoder, self.filler = encoder, filler
        self.model = nn.ModuleDict({"encoder": encoder, "filler": filler})
        self.train_items, self.held_items = train_items, held_items
        self.para_train, self.para_held, self.para_records = para_train, para_held, para_held_records
        self.generator = torch.Generator().manual_seed(ctx.config.run.seed + 17)
        self.fill_config = RarConfig(max_iterations=cfg.fill_iterations, epsilon=0.0)
        counts = Counter(l for it in train_items for l in it.labels if l != IGNORE)
        self.majority = counts.most_common(1)[0][0]
        self.fill_queries = self._fill_queries()

    # -- one training step ---------------------------------------------------------------------
    def step(self, batch) -> dict[str, Tensor]:
        cfg, dev = self.cfg, self.device
        ids, mask, labels, gold = (t.to(dev, non_blocking=True) for t in batch)
        out = self.encoder(ids, mask)
        role, role_acc = role_terms(out, labels)

        pick = torch.randperm(len(self.para_train), generator=self.generator)[:cfg.batch_size].tolist()
        a, am, b, bm, positive, _ = (t.to(dev) for t in collate_pairs([self.para_train[i] for i in pick]))
        both = self.encoder(*_stack(a, am, b, bm)).summary  # one pass over both sides
        contrastive, top1 = contrastive_terms(both[: len(pick)], both[len(pick):], positive, cfg.temperature)

        with torch.no_grad():
            frames, active = self.encoder.slot_context(out, mask)
        masked = choose_masks(gold, active, cfg.mask_ratio, self.generator)
        result = self.filler.fill(frames, active, masked, self.fill_config, cfg.fill_iterations, differentiable=True)
        cos = F.cosine_similarity(result.slots, frames, dim=-1)
        fill = ((1 - cos) * masked).sum() / masked.sum().clamp_min(1)

        loss = cfg.slot_weight * role + cfg.contrastive_weight * contrastive + cfg.slot_fill_weight * fill
        summary = rar_summary(result, active | masked)
        return {"loss": loss, "role": role, "contrastive": contrastive, "fill": fill, "role_acc": role_acc, "top1": top1,
                "rar/iterations_mean": torch.tensor(summary["rar/iterations_mean"]),
                "rar/converged_share": torch.tensor(summary["rar/converged_share"])}

    # -- evaluation ----------------------------------------------------------------------------
    def _frames(self, items: list[SrlItem]):
        """Role predictions, slot frames and active masks of held-out sentences."""
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

    def _summaries(self, rows: list[list[int]]) -> Tensor:
        out = []
        for part in chunks(rows, EVAL_BATCH):
            ids, mask = pad_rows(part, PAD_ID)
            out.append(self.encoder(ids.to(self.device), mask.to(self.device)).summary)
        return torch.cat(out)

    def _agent(self, word: str) -> Tensor:
        ids, mask = (t.to(self.device) for t in encode_batch(self.tok, probe_sentences(word), self.cfg.max_seq_len))
        frames, _ = self.encoder.slot_context(self.encoder(ids, mask), mask)
        return frames[:, 0]

    def _fill_queries(self) -> list[tuple[int, int, list[int]]]:
        """(sentence, slot, candidate sentences) of the slot-filling evaluation: fixed for the
        run (seeded), so every epoch answers the same questions. Candidates are other held-out
        sentences annotated with the same slot; gold-annotated only, activity is checked per
        evaluation."""
        rng = random.Random(self.ctx.config.run.seed + 29)
        by_slot: dict[int, list[int]] = {}
        for i, it in enumerate(self.held_items):
            for r in it.fillers:
                by_slot.setdefault(r, []).append(i)
        pairs = [(i, r) for i, it in enumerate(self.held_items) for r in sorted(it.fillers) if len(it.fillers) >= 2]
        rng.shuffle(pairs)
        queries = []
        for i, r in pairs[: self.cfg.fill_eval_queries]:
            pool = [j for j in by_slot[r] if j != i]
            queries.append((i, r, rng.sample(pool, min(len(pool), self.cfg.eval_candidates - 1))))
        return queries

    def _slot_fill(self, frames: Tensor, active: Tensor) -> dict[str, float]:
        on_host = active.cpu()  # looked up per query and candidate: no device sync each time
        queries = [(i, r, c) for i, r, c in self.fill_queries if on_host[i, r] and int(on_host[i].sum()) >= 2]
        if not queries:
            return {"slot_fill_accuracy": 0.0, "slot_fill_chance": 0.0, "slot_fill_prior_accuracy": 0.0,
                    "slot_fill_accuracy_at_horizon": 0.0, "slot_fill_queries": 0}
        config = RarConfig(max_iterations=EVAL_RAR_ITERATIONS)
        prior = F.normalize(self.filler.prior, dim=-1)
        hits = prior_hits = horizon_hits = 0
        chance = 0.0
        results, masks = [], []
        for part in chunks(queries, EVAL_BATCH):
            idx = torch.tensor([i for i, _, _ in part], device=self.device)
            slot = torch.tensor([r for _, r, _ in part], device=self.device)
            masked = F.one_hot(slot, MAX_SLOTS).bool()
            act = active[idx] & ~masked
            result = self.filler.fill(frames[idx], act, masked, config, self.cfg.fill_iterations, differentiable=False)
            results.append(result)
            masks.append(masked)
            # The same questions stopped where training's unroll stops: running on to 30 iterations
            # can drift past the fill (the gap between the two figures shows it).
            short = self.filler.fill(frames[idx], act, masked, self.fill_config, self.cfg.fill_iterations, differentiable=False)
            rows = torch.arange(len(part), device=self.device)
            refined, at_horizon = result.slots[rows, slot], short.slots[rows, slot]
            for q, (i, r, cands) in enumerate(part):
                own = self.held_items[i].fillers[r]
                # A candidate with the same filler is no competitor (ties with identical fillers count as correct).
                others = [j for j in cands if self.held_items[j].fillers[r] != own and bool(on_host[j, r])]
                chance += 1.0 / (1 + len(others))
                pool = frames[[i, *others], r]  # own original first
                hits += int(_retrieved(refined[q], pool))
                prior_hits += int(_retrieved(prior[r], pool))
                horizon_hits += int(_retrieved(at_horizon[q], pool))
        merged = RarResult(*(torch.cat([getattr(r, f) for r in results]) if getattr(results[0], f) is not None else None
                             for f in RarResult._fields))
        masked_all = torch.cat(masks)
        gamma = certainty(merged, masked_all, config.epsilon)
        rar_event(self.ctx, merged, masked_all, gamma, config.max_iterations, stage="grounding")
        n = len(queries)
        return {"slot_fill_accuracy": hits / n, "slot_fill_chance": chance / n, "slot_fill_prior_accuracy": prior_hits / n,
                "slot_fill_accuracy_at_horizon": horizon_hits / n, "slot_fill_queries": n}

    def evaluate(self) -> dict[str, float]:
        acc, majority, frames, active = self._frames(self.held_items)
        sa = self._summaries([p.a for p in self.para_held])
        sb = self._summaries([p.b for p in self.para_held])
        sims = F.cosine_similarity(sa, sb, dim=-1).tolist()
        targets = [p.target for p in self.para_held]
        overlap = [word_overlap(r["a"], r["b"]) for r in self.para_records]
        dog, canine = self._agent(PROBE_WORD), self._agent(PROBE_SYNONYM)
        unrelated = torch.stack([F.cosine_similarity(dog, self._agent(w), dim=-1) for w in PROBE_UNRELATED]).mean()
        return {
            "slot_accuracy": acc,
            "slot_accuracy_majority": majority,
            "sts_spearman": spearman(sims, targets),
            "sts_spearman_word_overlap": spearman(overlap, targets),
            "dog_canine_agent_cosine": float(F.cosine_similarity(dog, canine, dim=-1).mean()),
            "agent_cosine_unrelated": float(unrelated),
            **self._slot_fill(frames, active),
        }

    # -- the stage -------------------------------------------------------------------------------
    def summary(self, ev: dict[str, float]) -> str:
        return (f"Slot Acc: {ev['slot_accuracy']:.1%} (majority {ev['slot_accuracy_majority']:.1%}) | "
                f"STS rho: {ev['sts_spearman']:.3f} (word overlap {ev['sts_spearman_word_overlap']:.3f}) | "
                f"dog~canine S0: {ev['dog_canine_agent_cosine']:.3f} (dog~unrelated {ev['agent_cosine_unrelated']:.3f}) | "
                f"Slot fill: {ev['slot_fill_accuracy']:.1%} (at {self.cfg.fill_iterations} iterations "
                f"{ev['slot_fill_accuracy_at_horizon']:.1%}, prior only {ev['slot_fill_prior_accuracy']:.1%}, "
                f"chance {ev['slot_fill_chance']:.1%})")

    def fit(self) -> None:
        train_stage(self.ctx, "grounding", self.model, self.train_items, collate_srl, self.step, Hyper.of(self.cfg),
                    title="F1 grounding: encoder + slot filler", evaluate=self.evaluate, summary=self.summary,
                    metrics=("role_acc", "top1", "rar/iterations_mean", "rar/converged_share"),
                    shown={"role_acc": "Role Acc", "top1": "Top1"}, labels={"role": "R", "contrastive": "C", "fill": "F"},
                    generators={"f1": self.generator}, groups=[self.encoder, self.filler], clip_each=True)


# --- decoder ------------------------------------------------------------------------------------


def decoder_stage(ctx: RunContext, cfg: F1Config, tok, encoder: CnnFrameEncoder, decoder: SlotDecoder,
                  train_items: list[SrlItem], held_items: list[SrlItem]) -> None:
    width = min(cfg.max_seq_len, cfg.decoder_max_len - 1)
    held_rows = [it.ids[:width] for it in held_items][: max(cfg.decoder_batch_size * 4, 1)]
    hyper = Hyper.of(cfg, epochs=cfg.decoder_epochs, batch_size=cfg.decoder_batch_size, lr=cfg.decoder_lr)
    train_decoder(ctx, encoder, decoder, tok, [it.ids[:width] for it in train_items], chunks(held_rows, cfg.decoder_batch_size),
                  hyper, title="F1 decoder: frame -> sentence", sample_count=2, max_new_tokens=cfg.decoder_max_len, baseline=True)


# --- the phase ----------------------------------------------------------------------------------


def _reload(ctx: RunContext, module: nn.Module, name: str, kind: str) -> None:
    how = "The run's artifacts are incomplete; start a new run."
    artifacts.load_into(module, artifacts.read(ctx.artifact(name), kind, how), how)


def run(ctx: RunContext) -> None:
    cfg: F1Config = ctx.settings
    srl_train, srl_held, para_train, para_held = load_data(ctx, cfg)
    texts = [r["text"] for r in srl_train] + [r["a"] for r in para_train] + [r["b"] for r in para_train]
    tok = tokenizer_stage(ctx, cfg, texts)
    vocab = tok.get_vocab_size()
    train_items, held_items, para_items, para_held_items = encode_all(ctx, tok, cfg, srl_train, srl_held, para_train, para_held)
    ctx.plan_steps({"grounding": steps_per_epoch(len(train_items), cfg.batch_size) * cfg.epochs,  # progress/ETA over both
                    "decoder": steps_per_epoch(len(train_items), cfg.decoder_batch_size) * cfg.decoder_epochs})

    encoder = lang_stack.new_encoder(vocab, cfg.max_seq_len).to(ctx.device)
    filler = SlotFiller(cfg.vfn_hidden).to(ctx.device)
    filler_args = {"hidden": cfg.vfn_hidden, "dim": SLOT_DIM}
    if ctx.stage_done("grounding"):
        _reload(ctx, encoder, lang_stack.LANG_ENCODER, "lang_encoder")
        _reload(ctx, filler, SLOT_FILLER, "slot_filler")
    else:
        Grounding(ctx, cfg, tok, encoder, filler, train_items, held_items, para_items, para_held_items, para_held).fit()
        lang_stack.save_lang_stack(ctx, lang_stack.LangStack(tok, encoder, None, "new"))
        ctx.save_artifact(SLOT_FILLER, filler.state_dict(), "slot_filler", filler_args,
                          fill_iterations=cfg.fill_iterations, prior="normalised, start of a masked slot")
        ctx.mark_stage_done("grounding")

    decoder = lang_stack.new_decoder(vocab, cfg.decoder_max_len).to(ctx.device)
    if ctx.stage_done("decoder"):
        _reload(ctx, decoder, lang_stack.LANG_DECODER, "lang_decoder")
    else:
        decoder_stage(ctx, cfg, tok, encoder, decoder, train_items, held_items)
        lang_stack.save_lang_stack(ctx, lang_stack.LangStack(tok, encoder, decoder, "new"))
        ctx.mark_stage_done("decoder")
    ctx.say(f"Language stack saved: {ctx.artifacts_dir} ({lang_stack.LANG_TOKENIZER}, {lang_stack.LANG_ENCODER}, "
            f"{lang_stack.LANG_DECODER}, {SLOT_FILLER})")
