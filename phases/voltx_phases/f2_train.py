"""Training code of phase F2, world knowledge (imported only when the phase runs).

One stage, "knowledge", on (head, relation, tail) triples; every term in one step:

* bind:   ``||bind(eA, r) - eB||^2`` with ``e = encoder(text).summary`` (unit, 256-d);
* unbind: retrieval via unbind, InfoNCE of ``unbind(eB, r)`` over the batch's heads (see
  :func:`knowledge_losses` for why not ``||unbind(eB, r) - eA||^2``);
* superposition: ``superpose(members of an IsA-like category) ~ embed(category)`` (cosine);
* negatives: InfoNCE(tau) of ``bind(eA, r)`` over [B, sampled concepts, the batch's tails];
* energy: :class:`EnergyHead` on frames (S0=eA, S1=r, S2=eB) vs the same with a wrong tail;
* codebook: a learnable [K, 256] codebook (k-means initialised) pulled to the concepts,
  ``1 - max cos(sg(e), c)`` plus 0.25 x the commitment term.

The language stack comes from F1 (``f2.lang_from``) and is fine-tuned; without it a
tokenizer and an encoder start fresh. Evaluation is :mod:`voltx_phases.f2_eval`.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx.data.sources import holdout, load_records, parse_source
from voltx.engine import hdc
from voltx.engine.codebook import Codebook, kmeans
from voltx.engine.energy import EnergyHead, contrastive_energy_loss
from voltx.engine.frame import MAX_SLOTS, SLOT_DIM
from voltx.engine.tokenizer import load_tokenizer, save_tokenizer
from voltx.errors import ConfigError, DataError
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_phases import lang_stack
from voltx_phases.f2 import F2Config
from voltx_phases.f2_eval import Triple, analogy_questions, embed_concepts, evaluate_knowledge, known_tails, seen_triples

STAGE = "knowledge"
RELATIONS = "relations.safetensors"
CODEBOOK = "concept_codebook.safetensors"
EXAMPLE = "concepts_gen"
COMMITMENT = 0.25
IS_A = {"isa", "hypernym", "hypernyms", "instanceof", "typeof", "kindof"}


def is_category_relation(name: str) -> bool:
    """IsA-like: ``/r/IsA``, ``IsA``, ``is_a``, ``hypernym`` ... (case-insensitive)."""
    return name.rsplit("/", 1)[-1].lower().replace("_", "").replace(" ", "") in IS_A


# --- data -----------------------------------------------------------------------------------------


class KnowledgeBase:
    """Triples as ids. Concepts of the training triples come first (``[0, n_train)``): only
    they are drawn as negatives, so a concept no training triple names is never trained on.
    ``held`` maps each evaluation split (dev, test) to its triples, less those also in training
    and those whose relation training never shows."""

    def __init__(self, train_records: list[dict], held_records: dict[str, list[dict]]):
        def key(rec):
            return rec["head"].strip(), rec["relation"].strip(), rec["tail"].strip()

        train = list(dict.fromkeys(key(r) for r in train_records))
        self.relations = sorted({r for _, r, _ in train})
        rel_id = {r: i for i, r in enumerate(self.relations)}
        concepts = list(dict.fromkeys(c for h, _, t in train for c in (h, t)))
        self.n_train = len(concepts)
        seen = set(train)
        self.leaked = self.unknown_relation = 0
        held: dict[str, list[tuple[str, str, str]]] = {}
        for name, records in held_records.items():
            keys = list(dict.fromkeys(key(r) for r in records))
            self.leaked += sum(k in seen for k in keys)  # a held-out triple also in training is not held out
            self.unknown_relation += sum(k not in seen and k[1] not in rel_id for k in keys)
            held[name] = [k for k in keys if k not in seen and k[1] in rel_id]
        known = set(concepts)
        concepts += [c for c in dict.fromkeys(c for part in held.values() for h, _, t in part for c in (h, t)) if c not in known]
        self.concepts = concepts
        cid = {c: i for i, c in enumerate(concepts)}
        self.train: list[Triple] = [(cid[h], rel_id[r], cid[t]) for h, r, t in train]
        self.held: dict[str, list[Triple]] = {name: [(cid[h], rel_id[r], cid[t]) for h, r, t in part]
                                              for name, part in held.items()}
        # training triples as sorted int64 codes, for masking false negatives (never held-out ones)
        self._codes = torch.tensor(sorted({self.code(h, r, t) for h, r, t in self.train}), dtype=torch.long)
        members: dict[int, set[int]] = {}
        for h, r, t in self.train:
            if is_category_relation(self.relations[r]) and h != t:
                members.setdefault(t, set()).add(h)
        # a category needs two members before a superposition says more than one bind does
        self.categories = {c: sorted(m) for c, m in sorted(members.items()) if len(m) >= 2}

    def code(self, h, r, t):
        """One integer per (head, relation, tail); works on ints and broadcasting tensors."""
        n = len(self.concepts)
        return (h * len(self.relations) + r) * n + t

    def is_known(self, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
        """Whether each broadcast (h, r, t) is a training triple."""
        codes = self.code(h, r, t)
        return torch.isin(codes, self._codes.to(codes.device))


def hold_out(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(kept, held out) triples of a file: every triple of ``fraction / 2`` of the concepts named
    by 2 to 12 triples (concepts no kept triple names, for the codebook's error on unseen concepts),
    then a seeded ``fraction`` of the rest. The rule of the ``concepts_gen`` generator's split."""
    rng = random.Random(seed)
    uses = Counter(r[k].strip() for r in records for k in ("head", "tail"))
    pool = sorted(c for c, n in uses.items() if 2 <= n <= 12)
    unseen = set(rng.sample(pool, min(len(pool), round(len(uses) * fraction / 2))))
    out = [r for r in records if r["head"].strip() in unseen or r["tail"].strip() in unseen]
    kept, more = holdout([r for r in records if r["head"].strip() not in unseen and r["tail"].strip() not in unseen],
                         fraction, seed)
    return kept, out + more


def load_kb(ctx: RunContext, cfg: F2Config) -> KnowledgeBase:
    """Training, dev and test triples: a generator gives its three splits; a file gives
    :func:`hold_out` of its triples to test (unless ``triples_eval`` names the test data) and as
    much again to dev. Dev is evaluated every epoch, test once after training."""
    seed = ctx.config.run.seed
    train, dev, test = [], [], []
    for i, entry in enumerate(cfg.triples_data):
        records = load_records([entry], "triples", split="train", key="f2.triples_data", example=EXAMPLE)
        if parse_source(entry, "f2.triples_data").generator is not None:
            train += records
            dev += load_records([entry], "triples", split="dev", key="f2.triples_data", example=EXAMPLE)
            if not cfg.triples_eval:
                test += load_records([entry], "triples", split="test", key="f2.triples_data", example=EXAMPLE)
            continue
        if not cfg.triples_eval:
            records, out = hold_out(records, cfg.valid_fraction, seed + i)
            test += out
        records, out = hold_out(records, cfg.valid_fraction, seed + 1000 + i)
        train, dev = train + records, dev + out
    if cfg.triples_eval:
        test = load_records(cfg.triples_eval, "triples", split="test", key="f2.triples_eval", example=EXAMPLE)
    if cfg.max_examples and len(train) > cfg.max_examples:
        train = random.Random(seed).sample(train, cfg.max_examples)
    kb = KnowledgeBase(train, {"dev": dev, "test": test})
    if not kb.train or not kb.held["dev"] or not kb.held["test"]:
        raise DataError(f"f2: {len(kb.train)} training, {len(kb.held['dev'])} dev and {len(kb.held['test'])} test triples "
                        "after removing duplicates and held-out triples whose relation never occurs in training; need at "
                        "least one of each. Add data to f2.triples_data or f2.triples_eval, or raise f2.valid_fraction.")
    unseen = {name: len({c for h, _, t in part for c in (h, t) if c >= kb.n_train}) for name, part in kb.held.items()}
    ctx.say(f"Data: {len(kb.train):,} training / {len(kb.held['dev']):,} dev / {len(kb.held['test']):,} test triples; "
            f"{len(kb.concepts):,} concepts ({kb.n_train:,} in training; {unseen['dev']:,} dev and {unseen['test']:,} test "
            f"concepts no training triple names), {len(kb.relations)} relations, {len(kb.categories):,} IsA-like categories")
    for count, why in ((kb.leaked, "also occur in training"), (kb.unknown_relation, "have a relation training never shows")):
        if count:
            ctx.say(f"Data: {count:,} held-out triples dropped: they {why}")
    ctx.run.event("data", train=len(kb.train), dev=len(kb.held["dev"]), test=len(kb.held["test"]), concepts=len(kb.concepts),
                  unseen_test_concepts=unseen["test"], relations=len(kb.relations), categories=len(kb.categories),
                  dropped_leaked=kb.leaked)
    return kb


# --- model ----------------------------------------------------------------------------------------


class UnitaryRelations(nn.Module):
    """Relation vectors whose spectrum has magnitude 1 in every bin, parametrised by phases.

    Why: binding with ``r`` multiplies each frequency bin by ``R_k``; with ``|R_k| = 1`` it is
    a rotation (norm-preserving), and :func:`voltx.engine.hdc.unbind`, which divides by
    ``|R_k|^2``, is its exact inverse. A free vector would have bins near zero, where that
    division (the original's frequency-domain unbind) amplifies noise without bound, and
    retrieval by unbind would blow up. The DC and Nyquist bins of a real signal must be
    real, so they are fixed signs (+-1, drawn at init) instead of learned phases.
    """

    def __init__(self, count: int, dim: int = SLOT_DIM):
        super().__init__()
        if dim % 2:
            raise ValueError(f"relation dim must be even, got {dim}")
        self.dim = dim
        self.phase = nn.Parameter((torch.rand(count, dim // 2 - 1) * 2 - 1) * math.pi)
        self.register_buffer("edge_sign", torch.randint(0, 2, (count, 2)).float() * 2 - 1)

    def spectrum(self) -> Tensor:
        inner = torch.complex(torch.cos(self.phase), torch.sin(self.phase))
        edge = torch.complex(self.edge_sign, torch.zeros_like(self.edge_sign))
        return torch.cat([edge[:, :1], inner, edge[:, 1:]], dim=1)

    def vectors(self) -> Tensor:
        """``[R, dim]`` unit vectors (Parseval: a magnitude-1 spectrum has L2 norm 1)."""
        return torch.fft.irfft(self.spectrum(), n=self.dim, dim=-1)


class KnowledgeModel(nn.Module):
    """Everything F2 trains, in one module so the shared loop checkpoints it as one."""

    def __init__(self, encoder: nn.Module, relations: int, codebook_size: int):
        super().__init__()
        self.encoder = encoder
        self.relations = UnitaryRelations(relations)
        self.energy = EnergyHead(dim=SLOT_DIM)
        self.codebook = nn.Parameter(F.normalize(torch.randn(codebook_size, SLOT_DIM), dim=-1))

    def embed(self, ids: Tensor, mask: Tensor) -> Tensor:
        width = max(1, int(mask.sum(1).max())) if mask.numel() else 1  # trim shared padding
        return self.encoder(ids[:, :width], mask[:, :width]).summary

    def frame_energy(self, head: Tensor, rel: Tensor, tail: Tensor) -> Tensor:
        """Energy of triple frames: S0 = head (agent), S1 = relation (predicate), S2 = tail (patient)."""
        slots = head.new_zeros(head.shape[0], MAX_SLOTS, SLOT_DIM)
        slots[:, 0], slots[:, 1], slots[:, 2] = head, rel, tail
        active = torch.zeros(head.shape[0], MAX_SLOTS, dtype=torch.bool, device=head.device)
        active[:, :3] = True
        return self.energy(slots, active)


def cosine_top(e: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor]:
    """(max cosine, argmax) of every row of unit ``e`` against the normalised codebook, in chunks."""
    book = F.normalize(codebook, dim=-1)
    best, idx = [], []
    for start in range(0, book.shape[0], 16384):
        s, i = (e @ book[start : start + 16384].T).max(1)
        best.append(s)
        idx.append(i + start)
    s, which = torch.stack(best, 1).max(1)
    return s, torch.stack(idx, 1).gather(1, which[:, None]).squeeze(1)


def knowledge_losses(model: KnowledgeModel, cfg: F2Config, kb: KnowledgeBase, ids: Tensor, mask: Tensor,
                     batch: Tensor, gen: torch.Generator) -> dict[str, Tensor]:
    """All loss terms on one batch ``[B, 3]`` of (head, relation, tail) ids."""
    device = ids.device
    h, r, t = batch[:, 0].to(device), batch[:, 1].to(device), batch[:, 2].to(device)
    size = h.shape[0]
    negs = torch.randint(kb.n_train, (size, max(1, cfg.negatives)), generator=gen).to(device)
    cats, members = sample_categories(kb, cfg, gen)
    cats, members = cats.to(device), members.to(device)
    wanted = torch.cat([h, t, negs.flatten(), cats, members.flatten()])
    unique, inverse = torch.unique(wanted, return_inverse=True)  # encode each concept once
    emb = model.embed(ids[unique], mask[unique])[inverse]
    e_h, e_t = emb[:size], emb[size : 2 * size]
    e_neg = emb[2 * size : 2 * size + negs.numel()].view(*negs.shape, -1)
    rel = model.relations.vectors()[r]

    pred = hdc.bind(e_h, rel, check=False)
    bind = (pred - e_t).pow(2).sum(-1).mean()
    tau = cfg.temperature
    # InfoNCE over [true tail, sampled negatives, the other rows' tails]. A candidate that
    # makes a true training triple with (A, r) is masked: it is another right answer, not a
    # negative (1-to-N relations such as IsA would otherwise push true tails apart).
    eye = torch.eye(size, dtype=torch.bool, device=device)
    in_batch = (pred @ e_t.T).masked_fill(kb.is_known(h[:, None], r[:, None], t[None, :]) & ~eye, float("-inf"))
    sampled = torch.einsum("bd,bnd->bn", pred, e_neg).masked_fill(kb.is_known(h[:, None], r[:, None], negs), float("-inf"))
    logits = torch.cat([in_batch, sampled], 1) / tau
    target = torch.arange(size, device=device)
    nce = F.cross_entropy(logits, target)
    top1 = (logits.argmax(1) == target).float().mean()
    # Retrieval via unbind. With unitary relations unbind(eB, r) is the exact inverse
    # rotation, so ||unbind(eB, r) - eA||^2 equals the bind term to the last bit and would
    # only double its weight; what unbind adds is the other direction of retrieval: from
    # the tail and relation, pick the head among the batch's heads.
    back = hdc.unbind(e_t, rel, check=False)
    head_logits = (back @ e_h.T).masked_fill(kb.is_known(h[None, :], r[:, None], t[:, None]) & ~eye, float("-inf"))
    unbind = F.cross_entropy(head_logits / tau, target)

    if cats.numel():
        e_cat = emb[2 * size + negs.numel() : 2 * size + negs.numel() + cats.numel()]
        e_mem = emb[2 * size + negs.numel() + cats.numel() :].view(*members.shape, -1)
        superposition = (1 - F.cosine_similarity(hdc.superpose(e_mem, check=False), e_cat, dim=-1)).mean()
    else:
        superposition = emb.new_zeros(())

    # The energy head judges the space the algebra terms shape; its inputs are detached so
    # its hinge loss never bends concept or relation vectors to make its own task easier.
    e_pos = model.frame_energy(e_h.detach(), rel.detach(), e_t.detach())
    e_bad = model.frame_energy(e_h.detach(), rel.detach(), e_neg[:, 0].detach())
    energy = contrastive_energy_loss(e_pos, e_bad)
    energy_acc = (e_pos < e_bad).float().mean()

    concepts = emb[: 2 * size]
    best, which = cosine_top(concepts.detach(), model.codebook)
    chosen = F.normalize(model.codebook[which], dim=-1).detach()
    codebook = (1 - best).mean() + COMMITMENT * (1 - (concepts * chosen).sum(-1)).mean()

    loss = (cfg.bind_weight * bind + cfg.unbind_weight * unbind + cfg.superposition_weight * superposition
            + cfg.negative_weight * nce + cfg.energy_weight * energy + cfg.codebook_weight * codebook)
    return {"loss": loss, "bind": bind, "unbind": unbind, "superposition": superposition, "nce": nce,
            "energy": energy, "codebook": codebook, "top1": top1, "energy_acc": energy_acc}


def sample_categories(kb: KnowledgeBase, cfg: F2Config, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """(categories [k], members [k, m]) drawn with the stage generator (members with replacement)."""
    names = list(kb.categories)
    k, m = min(cfg.categories_per_step, len(names)), max(1, cfg.category_members)
    if not k:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, m, dtype=torch.long)
    picks = torch.randint(len(names), (k,), generator=gen).tolist()
    draws = torch.rand(k, m, generator=gen)
    cats = [names[p] for p in picks]
    rows = [[kb.categories[c][int(u * len(kb.categories[c]))] for u in row] for c, row in zip(cats, draws.tolist())]
    return torch.tensor(cats, dtype=torch.long), torch.tensor(rows, dtype=torch.long)


# --- the phase ------------------------------------------------------------------------------------


def language_stack(ctx: RunContext, cfg: F2Config, kb: KnowledgeBase) -> lang_stack.LangStack:
    where = lang_stack.locate_lang_stack(ctx, cfg.lang_from)
    if where is not None:
        stack = lang_stack.load_lang_stack(where, ctx.device, need_decoder=False, phase="f2")
        ctx.say(f"Language stack: {where} (vocab {stack.tokenizer.get_vocab_size()}, encoder max_seq_len {stack.encoder.max_seq_len})")
        return stack
    saved = ctx.artifact(lang_stack.LANG_TOKENIZER)
    if ctx.resume is not None and saved.exists():
        tok = load_tokenizer(saved)  # a resumed run keeps the tokenizer its checkpoints were trained with
    else:
        try:
            tok = lang_stack.train_tokenizer(kb.concepts[: kb.n_train] + kb.relations, cfg.vocab_size)
        except ValueError as exc:  # e.g. a vocabulary smaller than the byte alphabet
            raise ConfigError(f"f2.vocab_size = {cfg.vocab_size}: {exc}") from None
        save_tokenizer(tok, saved)
    ctx.say(f"Language stack: none from f1 (f2.lang_from = {cfg.lang_from!r}); trained a {tok.get_vocab_size()}-token "
            "tokenizer on the training concepts and starting a fresh encoder")
    encoder = lang_stack.new_encoder(tok.get_vocab_size(), cfg.max_seq_len).to(ctx.device)
    return lang_stack.LangStack(tok, encoder, None, "new")


def save_artifacts(ctx: RunContext, stack: lang_stack.LangStack, model: KnowledgeModel, kb: KnowledgeBase) -> None:
    lang_stack.save_lang_stack(ctx, stack)
    rel = model.relations
    tensors = {"relations": rel.vectors().detach().cpu().contiguous(), "phase": rel.phase.detach().cpu().contiguous(),
               "edge_sign": rel.edge_sign.detach().cpu().contiguous()}
    tensors.update({f"energy_head.{k}": v.detach().cpu().contiguous() for k, v in model.energy.state_dict().items()})
    ctx.save_artifact(RELATIONS, tensors, "relations", names=kb.relations, dim=SLOT_DIM, unitary=True,
                      energy_head={"dim": SLOT_DIM, "hidden": model.energy.embed.out_features})
    path = Codebook(F.normalize(model.codebook.detach().float().cpu(), dim=-1), index="flat").save(ctx.artifact(CODEBOOK))
    ctx.run.event("artifact", name=CODEBOOK, path=str(path), step=ctx.global_step)
    ctx.say(f"Artifacts saved in {ctx.artifacts_dir}")


def epoch_summary(ev: dict[str, float]) -> str:
    """Each figure next to its baseline: retrieval by bind, analogies, codebook error, energy ranking."""
    ev = {k.removeprefix("dev/"): v for k, v in ev.items()}
    codebook = (f"quant err {ev['codebook_quantization_error']:.3f} on {int(ev['codebook_concepts'])} unseen concepts "
                f"(K=1 {ev['codebook_k1_error']:.3f}, random {ev['codebook_random_error']:.3f}, spread "
                f"{ev['embedding_spread']:.3f})" if "codebook_quantization_error" in ev else "quant err: no unseen concepts")
    analogy = (f"analogy@1 {ev['analogy_top1']:.1%} (copy {ev['analogy_copy_baseline']:.1%}, unitary r_hat {ev['analogy_unitary_top1']:.1%}, learned r "
               f"{ev['analogy_learned_relation_top1']:.1%}, {int(ev['analogy_questions'])} q)") if "analogy_top1" in ev else "analogy: no questions"
    return (f"bind@1 {ev['bind_top1']:.1%} (filtered {ev['bind_top1_filtered']:.1%}, hits@10 {ev['bind_hits10']:.1%}; "
            f"chance {ev['bind_chance']:.2%}, popular tail {ev['bind_popular_top1']:.1%}) | {analogy} | {codebook} | "
            f"energy rank {ev['energy_rank_accuracy']:.1%}")


def run(ctx: RunContext) -> None:
    cfg: F2Config = ctx.settings
    if ctx.stage_done(STAGE):
        ctx.say(f"[{STAGE}] already finished; artifacts are in {ctx.artifacts_dir}")
        return
    kb = load_kb(ctx, cfg)
    stack = language_stack(ctx, cfg, kb)
    seq_len = min(cfg.max_seq_len, stack.encoder.max_seq_len)  # F1's encoder may be shorter or longer
    ids, mask = stack.encode_ids(kb.concepts, seq_len, ctx.device)
    k = min(cfg.codebook_size, kb.n_train)
    if k < cfg.codebook_size:
        ctx.say(f"Codebook: {k:,} entries (f2.codebook_size {cfg.codebook_size:,} capped at the number of training concepts)")
    model = KnowledgeModel(stack.encoder, len(kb.relations), k).to(ctx.device)
    if ctx.resume_point(STAGE) is None:  # fresh stage: k-means on the concepts as the encoder sees them now
        with torch.no_grad():
            model.eval()
            start = embed_concepts(model, ids[: kb.n_train], mask[: kb.n_train])
            model.codebook.copy_(kmeans(start.float(), k, iters=10, seed=ctx.config.run.seed).to(ctx.device))
            model.train()
    seed = ctx.config.run.seed
    known = known_tails(kb.train + kb.held["dev"] + kb.held["test"])
    questions = {name: analogy_questions(seen_triples(part, kb.n_train), known, cfg.analogy_queries, seed)
                 for name, part in kb.held.items()}
    gen = torch.Generator().manual_seed(seed + 2)

    def step(batch: Tensor) -> dict[str, Tensor]:
        return knowledge_losses(model, cfg, kb, ids, mask, batch, gen)

    def evaluate(split: str) -> dict[str, float]:
        return evaluate_knowledge(model, ids, mask, kb.train, kb.held[split], questions[split], seed, kb.n_train)

    train_stage(ctx, STAGE, model, kb.train, lambda rows: torch.tensor(rows, dtype=torch.long), step, Hyper.of(cfg),
                title="F2 world knowledge", evaluate=lambda: {f"dev/{k}": v for k, v in evaluate("dev").items()},
                summary=epoch_summary, metrics=("top1", "energy_acc"),
                shown={"top1": "batch top1"}, labels={"superposition": "sup", "codebook": "cb"}, generators={"negatives": gen},
                no_decay=[model.relations.phase, model.codebook],  # decay would pull phases to the identity relation
                about=f"codebook {k:,} x {SLOT_DIM}; {len(questions['dev']):,} dev analogy questions",
                background_collate=True)  # id rows to a tensor, pinned and copied ahead; negatives are drawn in the step
    model.eval()
    with torch.no_grad():
        test = evaluate("test")  # the judged figures, computed once
    ctx.record_evaluation(STAGE, ctx.global_step, cfg.epochs, test)
    ctx.say(f"[{STAGE}] test split, evaluated once: {epoch_summary(test)}")
    save_artifacts(ctx, stack, model, kb)
    ctx.mark_stage_done(STAGE)
