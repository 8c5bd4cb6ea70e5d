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
     the slot prior, with the context frozen: the frame of the sentence re-encoded without
     the masked slots' tokens (the word is not there to be copied back), the target the slot
     of the whole sentence. The frames are detached: filling trains the VFN on the encoder's
     frames and gives the encoder no reason to make its slots predictable by making them alike.
   Evaluated on the dev split every epoch and on the test split once at the end
   (:mod:`voltx_phases.f1_eval`) -> lang_encoder.safetensors, slot_filler.safetensors
3. decoder: renders the sentence from the frozen encoder's 16 slot vectors (the context
   it decodes from at inference; :mod:`voltx_phases.decoder_stage`, shared with the
   translator) -> lang_decoder.safetensors
"""

from __future__ import annotations

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
from voltx.engine.tokenizer import PAD_ID, load_tokenizer, save_tokenizer
from voltx.engine.vfn import Vfn
from voltx.errors import DataError
from voltx.train.batches import steps_per_epoch
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage

from . import lang_stack
from .f1 import F1Config
from .f1_data import (
    IGNORE, SrlItem, chunks, collate_pairs, collate_srl, drop_slot_tokens, encode_pairs, encode_srl, split_sources,
)
from .f1_eval import EvalSet, GroundingEval, fill_queries
from .rar_telemetry import rar_summary
from .decoder_stage import train_decoder

SPLITS = ("train", "dev", "test")
SLOT_FILLER = "slot_filler.safetensors"


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


# --- data ---------------------------------------------------------------------------------------


def load_data(ctx: RunContext, cfg: F1Config) -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """``({"train", "dev", "test"}: slot-annotated records, the same: paraphrase records)``."""
    seed = ctx.config.run.seed
    srl = dict(zip(SPLITS, split_sources(cfg.srl_data, cfg.srl_eval, "slot_annotated", key="f1.srl_data", eval_key="f1.srl_eval",
                                         example="srl_gen", valid_fraction=cfg.valid_fraction, seed=seed)))
    para = dict(zip(SPLITS, split_sources(cfg.paraphrase_data, cfg.paraphrase_eval, "paraphrase", key="f1.paraphrase_data",
                                          eval_key="f1.paraphrase_eval", example="paraphrase_gen",
                                          valid_fraction=cfg.valid_fraction, seed=seed)))
    for data in (srl, para):
        if cfg.max_examples:
            data["train"] = data["train"][:cfg.max_examples]
        if cfg.eval_max_examples:
            data["dev"], data["test"] = data["dev"][:cfg.eval_max_examples], data["test"][:cfg.eval_max_examples]
    ctx.say(f"Data: {' / '.join(f'{len(srl[k])} {k}' for k in SPLITS)} slot-annotated sentences; "
            f"{' / '.join(f'{len(para[k])} {k}' for k in SPLITS)} paraphrase pairs (dev every epoch, test once at the end)")
    ctx.run.event("data", **{f"srl_{k}": len(srl[k]) for k in SPLITS}, **{f"paraphrase_{k}": len(para[k]) for k in SPLITS})
    return srl, para


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


def encode_all(ctx: RunContext, tok, cfg: F1Config, srl: dict[str, list[dict]], para: dict[str, list[dict]]):
    """(training sentences, training pairs, {"dev": EvalSet, "test": EvalSet})."""
    encoded = {k: encode_srl(tok, srl[k], cfg.max_seq_len) for k in SPLITS}
    skipped = {k: n for k, (_, n) in encoded.items() if n}
    if skipped:
        ctx.say(f"Note: slot-annotated records that name no slot word found in their text (within {cfg.max_seq_len} tokens) "
                f"skipped: {', '.join(f'{n} {k}' for k, n in skipped.items())}")
        ctx.run.event("skipped_records", reason="no slot word found in the text", **skipped)
    train_items = encoded["train"][0]
    if len(train_items) < 2 or not encoded["dev"][0] or not encoded["test"][0]:
        raise DataError(f"f1.srl_data: only {' / '.join(f'{len(encoded[k][0])} {k}' for k in SPLITS)} sentences have a "
                        "slot word in their text; slots must be head words of the sentence (\"S0\": \"dog\")")
    seed = ctx.config.run.seed + 29
    sets = {k: EvalSet(k, encoded[k][0], encode_pairs(tok, para[k], cfg.max_seq_len), para[k],
                       fill_queries(tok, encoded[k][0], cfg.max_seq_len, cfg.eval_candidates, cfg.fill_eval_queries, seed))
            for k in ("dev", "test")}
    return train_items, encode_pairs(tok, para["train"], cfg.max_seq_len), sets


# --- grounding ----------------------------------------------------------------------------------


class Grounding:
    """The grounding stage's model, step and evaluation (kept together: they share state)."""

    def __init__(self, ctx: RunContext, cfg: F1Config, tok, encoder: CnnFrameEncoder, filler: SlotFiller,
                 train_items: list[SrlItem], para_train, eval_sets: dict[str, EvalSet]):
        self.ctx, self.cfg, self.device = ctx, cfg, ctx.device
        self.encoder, self.filler = encoder, filler
        self.model = nn.ModuleDict({"encoder": encoder, "filler": filler})
        self.train_items, self.para_train, self.eval_sets = train_items, para_train, eval_sets
        self.generator = torch.Generator().manual_seed(ctx.config.run.seed + 17)
        self.fill_config = RarConfig(max_iterations=cfg.fill_iterations, epsilon=0.0)
        counts = Counter(l for it in train_items for l in it.labels if l != IGNORE)
        self.evaluate = GroundingEval(ctx, cfg, tok, encoder, filler, majority=counts.most_common(1)[0][0])

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

        # Slot filling as evaluated: the masked slots' words are dropped from the sentence and the
        # rest re-encoded, so the context holds no trace of the answer; the target is the slot of
        # the whole sentence. Frames are detached (see the module docstring).
        with torch.no_grad():
            frames, active = self.encoder.slot_context(out, mask)
            masked = choose_masks(gold, active, cfg.mask_ratio, self.generator)
            short_ids, short_mask = drop_slot_tokens(ids, mask, labels, masked)
            context, context_active = self.encoder.slot_context(self.encoder(short_ids, short_mask), short_mask)
        result = self.filler.fill(context, context_active & ~masked, masked, self.fill_config, cfg.fill_iterations,
                                  differentiable=True)
        cos = F.cosine_similarity(result.slots, frames, dim=-1)
        fill = ((1 - cos) * masked).sum() / masked.sum().clamp_min(1)

        loss = cfg.slot_weight * role + cfg.contrastive_weight * contrastive + cfg.slot_fill_weight * fill
        summary = rar_summary(result, context_active | masked)
        return {"loss": loss, "role": role, "contrastive": contrastive, "fill": fill, "role_acc": role_acc, "top1": top1,
                "rar/iterations_mean": torch.tensor(summary["rar/iterations_mean"]),
                "rar/converged_share": torch.tensor(summary["rar/converged_share"])}

    # -- the stage -------------------------------------------------------------------------------
    def summary(self, ev: dict[str, float]) -> str:
        ev = {k.removeprefix("dev/"): v for k, v in ev.items()}
        return (f"Slot Acc: {ev['slot_accuracy']:.1%} (majority {ev['slot_accuracy_majority']:.1%}) | "
                f"STS rho: {ev['sts_spearman']:.3f} (word overlap {ev['sts_spearman_word_overlap']:.3f}) | "
                f"dog~canine S0: {ev['dog_canine_agent_cosine']:.3f} (dog~unrelated {ev['agent_cosine_unrelated']:.3f}, "
                f"dog~cat/horse {ev['agent_cosine_same_class']:.3f}) | "
                f"Slot fill, word cut from the text: {ev['slot_fill_accuracy']:.1%} (at {self.cfg.fill_iterations} iterations "
                f"{ev['slot_fill_accuracy_at_horizon']:.1%}; context mean {ev['slot_fill_context_mean']:.1%}, "
                f"prior only {ev['slot_fill_prior_accuracy']:.1%}, chance {ev['slot_fill_chance']:.1%})")

    def fit(self) -> None:
        """Train with the dev split evaluated every epoch (``grounding/dev/...``), then evaluate the
        test split once: the ``grounding/...`` figures the deliverables judge."""
        def on_dev() -> dict[str, float]:
            return {f"dev/{k}": v for k, v in self.evaluate(self.eval_sets["dev"]).items()}

        train_stage(self.ctx, "grounding", self.model, self.train_items, collate_srl, self.step, Hyper.of(self.cfg),
                    title="F1 grounding: encoder + slot filler", evaluate=on_dev, summary=self.summary,
                    metrics=("role_acc", "top1", "rar/iterations_mean", "rar/converged_share"),
                    shown={"role_acc": "Role Acc", "top1": "Top1"}, labels={"role": "R", "contrastive": "C", "fill": "F"},
                    generators={"f1": self.generator}, groups=[self.encoder, self.filler], clip_each=True,
                    background_collate=True)  # collate_srl pads; the step's own draws stay on the training thread
        self.model.eval()
        with torch.no_grad():
            test = self.evaluate(self.eval_sets["test"])
        self.model.train()
        self.ctx.record_evaluation("grounding", self.ctx.global_step, self.cfg.epochs, test)
        self.ctx.say(f"[grounding] test split, evaluated once: {self.summary(test)}")


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
    srl, para = load_data(ctx, cfg)
    texts = [r["text"] for r in srl["train"]] + [r["a"] for r in para["train"]] + [r["b"] for r in para["train"]]
    tok = tokenizer_stage(ctx, cfg, texts)
    vocab = tok.get_vocab_size()
    train_items, para_items, eval_sets = encode_all(ctx, tok, cfg, srl, para)
    ctx.plan_steps({"grounding": steps_per_epoch(len(train_items), cfg.batch_size) * cfg.epochs,  # progress/ETA over both
                    "decoder": steps_per_epoch(len(train_items), cfg.decoder_batch_size) * cfg.decoder_epochs})

    encoder = lang_stack.new_encoder(vocab, cfg.max_seq_len).to(ctx.device)
    filler = SlotFiller(cfg.vfn_hidden).to(ctx.device)
    filler_args = {"hidden": cfg.vfn_hidden, "dim": SLOT_DIM}
    if ctx.stage_done("grounding"):
        _reload(ctx, encoder, lang_stack.LANG_ENCODER, "lang_encoder")
        _reload(ctx, filler, SLOT_FILLER, "slot_filler")
    else:
        Grounding(ctx, cfg, tok, encoder, filler, train_items, para_items, eval_sets).fit()
        lang_stack.save_lang_stack(ctx, lang_stack.LangStack(tok, encoder, None, "new"))
        ctx.save_artifact(SLOT_FILLER, filler.state_dict(), "slot_filler", filler_args,
                          fill_iterations=cfg.fill_iterations, prior="normalised, start of a masked slot")
        ctx.mark_stage_done("grounding")

    decoder = lang_stack.new_decoder(vocab, cfg.decoder_max_len).to(ctx.device)
    if ctx.stage_done("decoder"):
        _reload(ctx, decoder, lang_stack.LANG_DECODER, "lang_decoder")
    else:
        decoder_stage(ctx, cfg, tok, encoder, decoder, train_items, eval_sets["dev"].items)
        lang_stack.save_lang_stack(ctx, lang_stack.LangStack(tok, encoder, decoder, "new"))
        ctx.mark_stage_done("decoder")
    ctx.say(f"Language stack saved: {ctx.artifacts_dir} ({lang_stack.LANG_TOKENIZER}, {lang_stack.LANG_ENCODER}, "
            f"{lang_stack.LANG_DECODER}, {SLOT_FILLER})")
