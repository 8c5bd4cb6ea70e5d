"""Training code of phase F3, compositional reasoning (imported only when the phase runs).

One stage, ``reasoning``, through the shared loop. Every step, on a batch of reasoning
records (see :mod:`voltx_phases.f3_model` for the terms):

a. denoising slot refinement (primary): clean frames of the inputs, outputs and chain
   frames are corrupted (zeroed / noised / shuffled slots, per-slot time from the level);
   the drift ``vfn + beta * attention`` must predict ``clean - corrupted``; and clean frames
   (as RAR meets a query) must be its fixed points (tangential drift -> 0);
b. slot-conditional flow matching with per-slot time and a slot-identity penalty; the
   identity head learns slot identity from clean slots;
c. reasoning chains: a short differentiable RAR unroll from ``f_k`` lands on ``f_{k+1}``;
d. answer rendering (the plan's decoder exception): the decoder, teacher-forced, renders
   the output from the input frame after the same RAR the evaluation runs (passed straight
   through to the encoder, see :func:`voltx_phases.f3_model.answer_terms`).

Evaluation is end to end on held-out records: encode -> RAR (not differentiable, up to
``rar_max_iterations``) -> greedy decode -> exact match; plus frame denoising through RAR
and RAR convergence. Artifacts: vfn_foundation.safetensors and the fine-tuned language stack.
"""

from __future__ import annotations

from collections import Counter

import torch

from voltx.engine.slot_decoder import IGNORE_INDEX
from voltx.engine.rar import RarResult
from voltx.engine.tokenizer import load_tokenizer, save_tokenizer
from voltx.errors import DataError
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_phases import lang_stack
from voltx_phases.f3_data import (
    BABI_TASKS, ReasoningData, chain_pairs, encode, glue, load_data, majority_answers, normalise, task_group, training_texts,
)
from voltx_phases.f3_model import (
    VFN_FOUNDATION, answer_terms, build_model, chain_loss, corrupt, denoise_loss, fixed_point_loss, flow_losses, frames,
    identity_head_loss, refine, save_vfn_foundation,
)
from voltx_phases.rar_telemetry import certainty, rar_event, rar_summary

STAGE = "reasoning"
DENOISE_COSINE = 0.9
"""A corrupted slot counts as restored when its cosine with the original exceeds this (plan, Part VI)."""
DENOISE_EVAL_FRAMES = 256
"""Held-out frames corrupted for the denoising evaluation."""


# --- the language stack -----------------------------------------------------------------------


def language_stack(ctx: RunContext, cfg, records: list[dict], where) -> lang_stack.LangStack:
    """F1's (or F2's) stack from ``where``, else (None) a tokenizer trained here and a fresh encoder/decoder."""
    device = ctx.device
    if where is not None:
        stack = lang_stack.load_lang_stack(where, device, need_decoder=False, phase="f3")
        vocab = stack.tokenizer.get_vocab_size()
        ctx.say(f"Language stack: {where} (vocab {vocab}, encoder max_seq_len {stack.encoder.max_seq_len}"
                + (")" if stack.decoder is not None else "; no decoder there: a fresh one renders the answers)"))
        if stack.decoder is None:
            stack.decoder = lang_stack.new_decoder(vocab, cfg.decoder_max_len).to(device)
        return stack
    artifact = ctx.artifact(lang_stack.LANG_TOKENIZER)
    if ctx.resume is not None and artifact.exists():  # resumed: the tokenizer this run trained
        tok = load_tokenizer(artifact)
    else:
        tok = lang_stack.train_tokenizer(training_texts(records), cfg.vocab_size)
        save_tokenizer(tok, artifact)
    vocab = tok.get_vocab_size()
    ctx.say(f"Language stack: none (f3.lang_from = {cfg.lang_from!r}); a BPE tokenizer trained on the F3 texts "
            f"(vocab {vocab}) and a fresh encoder and decoder")
    encoder = lang_stack.new_encoder(vocab, cfg.max_seq_len).to(device)
    decoder = lang_stack.new_decoder(vocab, cfg.decoder_max_len).to(device)
    return lang_stack.LangStack(tok, encoder, decoder, "new")


# --- evaluation ---------------------------------------------------------------------------------


def _cat_results(results: list[RarResult]) -> RarResult:
    return RarResult(*(torch.cat([getattr(r, f) for r in results]) if f != "sigma" else None for f in RarResult._fields))


class Evaluator:
    """End-to-end evaluation on the held-out records (see the module docstring for the keys)."""

    def __init__(self, ctx: RunContext, cfg, model, tok, data: ReasoningData, enc_len: int, dec_len: int):
        self.ctx, self.cfg, self.model, self.tok = ctx, cfg, model, tok
        self.records = data.eval
        self.enc_len, self.dec_len = enc_len, dec_len
        self.majority = majority_answers(data.train)
        self.batch = max(32, cfg.batch_size * 2)

    def __call__(self) -> dict[str, float]:
        cfg, model, tok, dev = self.cfg, self.model, self.tok, self.ctx.device
        exact: list[bool] = []
        predictions: list[str] = []
        results, actives = [], []
        tokens: list[tuple[int, int]] = []  # (correct, total) answer tokens per record, teacher-forced
        for start in range(0, len(self.records), self.batch):
            chunk = self.records[start : start + self.batch]
            ids, mask = encode(tok, [r["input"] for r in chunk], self.enc_len, dev, keep="tail")
            slots, active = frames(model, ids, mask)
            out_ids, out_mask = encode(tok, [r["output"] for r in chunk], self.dec_len - 1, dev, keep="head")
            result = refine(model, slots, active, cfg)
            decoder = model["decoder"]
            inputs, labels = decoder.teacher_forced_batch(out_ids, out_mask)
            valid = labels.ne(IGNORE_INDEX)  # answer tokens + EOS
            hits = (decoder(inputs, result.slots, active).argmax(-1).eq(labels) & valid).sum(-1)
            tokens += list(zip(hits.tolist(), valid.sum(-1).tolist()))
            generated = model["decoder"].generate(result.slots, active, max_new_tokens=self.dec_len)
            decoded = [normalise(tok.decode(g)) for g in generated]
            predictions += decoded
            exact += [p == normalise(r["output"]) for p, r in zip(decoded, chunk)]
            results.append(result)
            actives.append(active)
        metrics = self._accuracies(exact, tokens, predictions)
        result, active = _cat_results(results), torch.cat(actives)
        metrics["rar_converged_share"] = float(result.converged.all(-1).float().mean())
        metrics["rar_iterations_mean"] = float(result.total_iterations.float().mean())
        gamma = certainty(result, active, cfg.rar_epsilon)
        rar_event(self.ctx, result, active, gamma, cfg.rar_max_iterations, stage=STAGE, queries=len(self.records))
        metrics.update(self._denoising())
        return metrics

    def _accuracies(self, exact: list[bool], tokens: list[tuple[int, int]], predictions: list[str]) -> dict[str, float]:
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(self.records):
            groups.setdefault(task_group(r["task"]), []).append(i)
            split = (r.get("meta") or {}).get("split")
            if r["task"] == "scan" and split:
                groups.setdefault(f"scan_{split}", []).append(i)
        out: dict[str, float] = {}
        for name, idx in sorted(groups.items()):
            base = name.split("_")[0] if name.startswith("scan_") else name
            guess = self.majority.get(base)
            acc = sum(exact[i] for i in idx) / len(idx)
            chance = sum(normalise(self.records[i]["output"]) == guess for i in idx) / len(idx)
            key = f"babi_{name}" if name in BABI_TASKS else name
            out[f"{key}_accuracy"], out[f"{key}_majority_baseline"] = acc, chance
            # the best any constant answer could score here (a collapsed decoder can beat the training majority)
            answers = Counter(normalise(self.records[i]["output"]) for i in idx)
            out[f"{key}_best_constant"] = answers.most_common(1)[0][1] / len(idx)
            out[f"{key}_distinct_predictions"] = float(len({predictions[i] for i in idx}))
            out[f"{key}_examples"] = float(len(idx))
            out[f"{key}_token_accuracy"] = sum(tokens[i][0] for i in idx) / max(1, sum(tokens[i][1] for i in idx))
        out["answer_token_accuracy"] = sum(c for c, _ in tokens) / max(1, sum(n for _, n in tokens))
        babi = [t for t in BABI_TASKS if f"babi_{t}_accuracy" in out]
        if babi:
            out["babi_accuracy"] = sum(out[f"babi_{t}_accuracy"] for t in babi) / len(babi)
            out["babi_majority_baseline"] = sum(out[f"babi_{t}_majority_baseline"] for t in babi) / len(babi)
            out["babi_best_constant"] = sum(out[f"babi_{t}_best_constant"] for t in babi) / len(babi)
        return out

    def _denoising(self) -> dict[str, float]:
        """Held-out input frames corrupted as in training, then RAR: share of corrupted slots
        restored (cosine > 0.9), and the same share before RAR (the baseline)."""
        cfg, dev = self.cfg, self.ctx.device
        stride = max(1, len(self.records) // DENOISE_EVAL_FRAMES)  # spread over all tasks, not the first one's
        texts = [r["input"] for r in self.records[::stride][:DENOISE_EVAL_FRAMES]]
        if not texts:
            return {}
        gen = torch.Generator().manual_seed(self.ctx.config.run.seed + 7)  # the same corruptions every evaluation
        restored = before = changed_total = 0.0
        for start in range(0, len(texts), self.batch):
            ids, mask = encode(self.tok, texts[start : start + self.batch], self.enc_len, dev, keep="tail")
            clean, active = frames(self.model, ids, mask)
            corr = corrupt(clean, active, gen, cfg)
            result = refine(self.model, corr.slots, active, cfg)
            after_ok = torch.cosine_similarity(result.slots, clean, dim=-1) > DENOISE_COSINE
            before_ok = torch.cosine_similarity(corr.slots, clean, dim=-1) > DENOISE_COSINE
            restored += float((after_ok & corr.changed).sum())
            before += float((before_ok & corr.changed).sum())
            changed_total += float(corr.changed.sum())
        n = max(changed_total, 1.0)
        return {"denoise_slot_share": restored / n, "denoise_share_before": before / n, "denoise_slots": changed_total}


# --- the stage ----------------------------------------------------------------------------------


def reasoning_losses(model, tok, cfg, enc_len: int, dec_len: int, gen: torch.Generator, dev: torch.device,
                     batch: list[dict]) -> dict[str, torch.Tensor]:
    """Every term of one step on a batch of records (the module docstring says what each does)."""
    beta = cfg.rar_beta
    ids, mask = encode(tok, [r["input"] for r in batch], enc_len, dev, keep="tail")
    slots, active = frames(model, ids, mask)  # with gradient: the answer term fine-tunes the encoder
    out_ids, out_mask = encode(tok, [r["output"] for r in batch], dec_len - 1, dev, keep="head")
    index, src_texts, dst_texts = chain_pairs(batch[: cfg.chain_batch], torch.rand(len(batch), generator=gen))
    with torch.no_grad():  # clean frames are targets: detached
        pool = [(slots.detach(), active), frames(model, *encode(tok, [r["output"] for r in batch], enc_len, dev, keep="tail"))]
        if index:
            src = frames(model, *encode(tok, src_texts, enc_len, dev, keep="tail"))
            dst = frames(model, *encode(tok, dst_texts, enc_len, dev, keep="tail"))
            pool.append(dst)
    clean, clean_active = torch.cat([p[0] for p in pool]), torch.cat([p[1] for p in pool])
    denoise = denoise_loss(model, clean, clean_active, corrupt(clean, clean_active, gen, cfg), beta)
    flow = flow_losses(model, clean, clean_active, gen, beta)
    fixed = fixed_point_loss(model, clean, clean_active, gen, beta)
    id_head, id_acc = identity_head_loss(model, clean, clean_active)
    chain = chain_loss(model, *src, *dst, cfg) if index else slots.new_zeros(())
    answer, answer_acc, result = answer_terms(model, slots, active, out_ids, out_mask, cfg)
    loss = (cfg.denoise_weight * denoise + cfg.fixed_point_weight * fixed + cfg.flow_weight * flow["flow"] + cfg.identity_weight * (flow["identity"] + id_head)
            + cfg.chain_weight * chain + cfg.answer_weight * answer)
    summary = {k: torch.tensor(v) for k, v in rar_summary(result, active).items()}
    return {"loss": loss, "denoise": denoise, "fixed": fixed, "flow": flow["flow"], "identity": flow["identity"], "id_head": id_head,
            "chain": chain, "answer": answer, "answer_acc": answer_acc, "id_acc": id_acc, **summary}


def epoch_summary(ev: dict[str, float]) -> str:
    """Each task's exact-match accuracy next to its majority baseline, then denoising and RAR."""
    parts = []
    if "scan_accuracy" in ev:
        parts.append(f"SCAN: {ev['scan_accuracy']:.1%} exact (majority {ev['scan_majority_baseline']:.1%}), "
                     f"tokens {ev['scan_token_accuracy']:.1%}")
    if "babi_accuracy" in ev:
        per = " ".join(f"{t} {ev[f'babi_{t}_accuracy']:.0%}" for t in BABI_TASKS if f"babi_{t}_accuracy" in ev)
        parts.append(f"bAbI: {ev['babi_accuracy']:.1%} ({per}; majority {ev['babi_majority_baseline']:.1%}, "
                     f"best constant {ev['babi_best_constant']:.1%})")
    if "kinship_accuracy" in ev:
        parts.append(f"kinship: {ev['kinship_accuracy']:.1%} (majority {ev['kinship_majority_baseline']:.1%})")
    parts.append(f"Answer tokens: {ev['answer_token_accuracy']:.1%}")
    if "denoise_slot_share" in ev:
        parts.append(f"Denoise: {ev['denoise_slot_share']:.1%} (before RAR {ev['denoise_share_before']:.1%})")
    parts.append(f"RAR converged: {ev['rar_converged_share']:.1%} in {ev['rar_iterations_mean']:.1f} it")
    return " | ".join(parts)


# --- the phase --------------------------------------------------------------------------------


def check_data(ctx: RunContext, data: ReasoningData) -> None:
    if len(data.train) < 2:
        raise DataError(f"f3.reasoning_data gave {len(data.train)} training records; need at least 2 (a batch).")
    if not data.eval:
        raise DataError("f3: no held-out records to evaluate on; list some in f3.reasoning_eval "
                        "(or give generators, whose test split is used, or files with more records).")
    tasks = sorted({task_group(r["task"]) for r in data.train})
    with_steps = sum(1 for r in data.train if r.get("steps"))
    ctx.say(f"Data: {len(data.train)} training records ({', '.join(tasks)}; {with_steps} with reasoning steps), "
            f"{len(data.eval)} held-out ({data.eval_source})")
    ctx.run.event("data", train=len(data.train), eval=len(data.eval), tasks=tasks, with_steps=with_steps)


def run(ctx: RunContext) -> None:
    cfg = ctx.settings
    data = load_data(cfg, ctx.config.run.seed)
    check_data(ctx, data)
    where = lang_stack.locate_lang_stack(ctx, cfg.lang_from)
    if where is None or lang_stack.knows_glued_words(where):  # a tokenizer trained on glued texts: SCAN actions stay whole
        data.train, data.eval = [glue(r) for r in data.train], [glue(r) for r in data.eval]
    stack = language_stack(ctx, cfg, data.train, where)
    tok = stack.tokenizer
    enc_len = min(cfg.max_seq_len, stack.encoder.max_seq_len)
    dec_len = lang_stack.fit_decoder(stack, [r["output"] for r in data.train + data.eval], cfg.decoder_max_len, "f3", ctx.say)
    model = build_model(stack, cfg).to(ctx.device)
    gen = torch.Generator().manual_seed(ctx.config.run.seed + 3)  # corruption, flow noise, chain choices
    vfn_params = sum(p.numel() for p in model["vfn"].parameters())
    train_stage(ctx, STAGE, model, data.train, list, lambda batch: reasoning_losses(model, tok, cfg, enc_len, dec_len, gen, ctx.device, batch),
                Hyper.of(cfg, min_lr_ratio=cfg.min_lr / cfg.lr), title="Volt X F3 Compositional Reasoning",
                evaluate=Evaluator(ctx, cfg, model, tok, data, enc_len, dec_len), summary=epoch_summary,
                metrics=("answer_acc", "id_acc", "rar/iterations_mean", "rar/converged_share"), shown={"answer_acc": "Acc"},
                labels={"denoise": "D", "fixed": "P", "flow": "F", "identity": "I", "id_head": "H", "chain": "C", "answer": "A"},
                generators={"f3": gen}, about=f"ScaledVfn {vfn_params:,}: hidden {cfg.vfn_hidden}, {cfg.vfn_blocks} blocks")
    ctx.mark_stage_done(STAGE)
    save_vfn_foundation(ctx, model, cfg)
    lang_stack.save_lang_stack(ctx, stack)
    ctx.say(f"Artifacts: {VFN_FOUNDATION}, {lang_stack.LANG_TOKENIZER}, {lang_stack.LANG_ENCODER}, "
            f"{lang_stack.LANG_DECODER} in {ctx.artifacts_dir}")
