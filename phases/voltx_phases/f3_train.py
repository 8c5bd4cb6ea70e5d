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

Evaluation (:mod:`voltx_phases.f3_eval`) is end to end: encode -> RAR (not differentiable, up
to ``rar_max_iterations``) -> greedy decode -> exact match, plus frame denoising through RAR
and RAR convergence, every figure beside its no-model baselines; every epoch on the dev
records, once at the end on the test records (with the RAR-off ablations). Artifacts: vfn_foundation.safetensors and the fine-tuned language stack.
"""

from __future__ import annotations

import torch

from voltx.engine.tokenizer import load_tokenizer, save_tokenizer
from voltx.errors import DataError
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_phases import lang_stack
from voltx_phases.f3_data import BABI_TASKS, ReasoningData, chain_pairs, encode, glue, load_data, task_group, training_texts
from voltx_phases.f3_eval import Evaluator, evaluate_once
from voltx_phases.f3_model import (
    VFN_FOUNDATION, answer_terms, build_model, chain_loss, corrupt, denoise_loss, fixed_point_loss, flow_losses, frames,
    identity_head_loss, save_vfn_foundation,
)
from voltx_phases.rar_telemetry import rar_summary

STAGE = "reasoning"
TEST = "test"
"""Stage name of the once-only test evaluation (``test/<key>``), what the deliverables judge."""


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


def _beside(ev: dict[str, float], key: str) -> str:
    """A task's baselines (and, on test, its RAR-off ablation) as ``best constant x%, ...``."""
    shown = (("best constant", "_best_constant"), ("nearest training answer", "_nearest_train_answer"),
             ("by words", "_nearest_train_answer_words"), ("RAR off", "_accuracy_rar_off"))
    return ", ".join(f"{label} {ev[key + suffix]:.1%}" for label, suffix in shown if key + suffix in ev)


def epoch_summary(ev: dict[str, float]) -> str:
    """Each task's exact-match accuracy next to its baselines, then denoising and RAR."""
    parts = []
    if "scan_accuracy" in ev:
        parts.append(f"SCAN: {ev['scan_accuracy']:.1%} exact ({_beside(ev, 'scan')}), tokens {ev['scan_token_accuracy']:.1%}")
    per = " ".join(f"{t} {ev[f'babi_{t}_accuracy']:.0%}" for t in BABI_TASKS if f"babi_{t}_accuracy" in ev)
    if per:
        mean = f"{ev['babi_accuracy']:.1%} ({per}; {_beside(ev, 'babi')})" if "babi_accuracy" in ev else f"{per} (no mean: tasks 1-3 not all evaluated)"
        parts.append(f"bAbI: {mean}")
    if "kinship_accuracy" in ev:
        parts.append(f"kinship: {ev['kinship_accuracy']:.1%} ({_beside(ev, 'kinship')})")
    parts.append(f"Answer tokens: {ev['answer_token_accuracy']:.1%}")
    if "denoise_slot_share" in ev:
        parts.append(f"Denoise: retrieval {ev['denoise_retrieval_top1']:.1%} (frame mean {ev['denoise_frame_mean_retrieval_top1']:.1%}, "
                     f"before RAR {ev['denoise_retrieval_top1_before']:.1%}), cos > 0.9 {ev['denoise_slot_share']:.1%} "
                     f"(frame mean {ev['denoise_frame_mean_share']:.1%}, before RAR {ev['denoise_share_before']:.1%})")
    parts.append(f"RAR converged: {ev['rar_converged_share']:.1%} in {ev['rar_iterations_mean']:.1f} it, "
                 f"converged and right {ev['rar_converged_correct_share']:.1%}")
    return " | ".join(parts)


# --- the phase --------------------------------------------------------------------------------


def check_data(ctx: RunContext, data: ReasoningData) -> None:
    if len(data.train) < 2:
        raise DataError(f"f3.reasoning_data gave {len(data.train)} training records; need at least 2 (a batch).")
    if not data.eval or not data.dev:
        raise DataError("f3: too few held-out records for a dev and a test split; list some in f3.reasoning_eval "
                        "(or give generators, whose test split is used, or files with more records).")
    tasks = sorted({task_group(r["task"]) for r in data.train})
    with_steps = sum(1 for r in data.train if r.get("steps"))
    ctx.say(f"Data: {len(data.train)} training records ({', '.join(tasks)}; {with_steps} with reasoning steps), "
            f"{len(data.dev)} dev (every epoch), {len(data.eval)} test (judged once at the end) ({data.eval_source})")
    ctx.run.event("data", train=len(data.train), dev=len(data.dev), eval=len(data.eval), tasks=tasks, with_steps=with_steps)


def run(ctx: RunContext) -> None:
    cfg = ctx.settings
    data = load_data(cfg, ctx.config.run.seed)
    check_data(ctx, data)
    where = lang_stack.locate_lang_stack(ctx, cfg.lang_from)
    if where is None or lang_stack.knows_glued_words(where):  # a tokenizer trained on glued texts: SCAN actions stay whole
        data.train, data.dev, data.eval = ([glue(r) for r in records] for records in (data.train, data.dev, data.eval))
    stack = language_stack(ctx, cfg, data.train, where)
    tok = stack.tokenizer
    enc_len = min(cfg.max_seq_len, stack.encoder.max_seq_len)
    dec_len = lang_stack.fit_decoder(stack, [r["output"] for r in data.train + data.dev + data.eval], cfg.decoder_max_len, "f3", ctx.say)
    model = build_model(stack, cfg).to(ctx.device)
    gen = torch.Generator().manual_seed(ctx.config.run.seed + 3)  # corruption, flow noise, chain choices
    vfn_params = sum(p.numel() for p in model["vfn"].parameters())
    train_stage(ctx, STAGE, model, data.train, list, lambda batch: reasoning_losses(model, tok, cfg, enc_len, dec_len, gen, ctx.device, batch),
                Hyper.of(cfg, min_lr_ratio=cfg.min_lr / cfg.lr), title="Volt X F3 Compositional Reasoning",
                evaluate=Evaluator(ctx, cfg, model, tok, data.dev, data.train, enc_len, dec_len, full=False), summary=epoch_summary,
                metrics=("answer_acc", "id_acc", "rar/iterations_mean", "rar/converged_share"), shown={"answer_acc": "Acc"},
                labels={"denoise": "D", "fixed": "P", "flow": "F", "identity": "I", "id_head": "H", "chain": "C", "answer": "A"},
                generators={"f3": gen}, about=f"ScaledVfn {vfn_params:,}: hidden {cfg.vfn_hidden}, {cfg.vfn_blocks} blocks")
    ctx.mark_stage_done(STAGE)
    save_vfn_foundation(ctx, model, cfg)
    lang_stack.save_lang_stack(ctx, stack)
    ctx.say(f"Artifacts: {VFN_FOUNDATION}, {lang_stack.LANG_TOKENIZER}, {lang_stack.LANG_ENCODER}, "
            f"{lang_stack.LANG_DECODER} in {ctx.artifacts_dir}")
    # The judged figures: the test records, once, after training (the epochs saw only dev).
    test = evaluate_once(model, Evaluator(ctx, cfg, model, tok, data.eval, data.train, enc_len, dec_len, full=True))
    ctx.record_evaluation(TEST, ctx.global_step, cfg.epochs, test)
    ctx.say(f"[{TEST}] {len(data.eval)} test records: {epoch_summary(test)}")
