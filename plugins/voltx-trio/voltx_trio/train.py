"""The run of ``voltx run trio``: one role's LoRA adapter, trained through voltx's phase kit.

Data (:mod:`voltx_trio.data`) -> base model and tokenizer (:mod:`voltx_trio.models`) -> every
record rendered with the role's prompt and tokenised once -> ``train_stage`` over the LoRA
weights only (checkpoints hold them and AdamW's state: SIGTERM -> 75 -> ``--resume auto`` is
exact) -> the adapter saved with peft as safetensors in ``artifacts/trio-<role>/``.

An optimizer step takes ``batch_size * grad_accum`` records as ``grad_accum`` micro-batches
(:class:`voltx.train.batches.MicroBatches`; the document's batch 4 x accumulation 2): the shared
loop runs each micro-batch's forward and backward in turn, so memory is one micro-batch's, and
each contributes its summed answer-token loss over the step's answer tokens, so the gradient is
the whole step's mean, as one batch of all its records.
"""

from __future__ import annotations

import json
import os
import shutil

import torch

from voltx.train.batches import MicroBatches
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage

from voltx_trio.evaluate import Encoded, answer_nll, best_constant_format, best_constant_verdict, pad_batch, scores, unigram_loss
from voltx_trio.phase import STAGE, TrioConfig


def encode(tokenizer, role, chat: bool, record: dict, max_len: int) -> Encoded:
    """Prompt and answer token ids of ``record`` (answer + end of sequence), cut to ``max_len``
    from the prompt's start, never from the answer."""
    from voltx_trio.roles import prompt

    p = tokenizer(prompt(tokenizer, role, record["input"], chat), add_special_tokens=False)["input_ids"]
    a = tokenizer(record["output"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    a = a[:max_len - 1]
    return Encoded(p[-(max_len - len(a)):], a)


def micro_batches(rows: list[Encoded], size: int, pad_id: int) -> MicroBatches:
    """One optimizer step's records as padded micro-batches of ``size``, each knowing the step's
    answer-token count (:func:`micro_loss` divides by it)."""
    parts = [pad_batch(rows[i:i + size], pad_id) for i in range(0, len(rows), size)]
    tokens = torch.tensor(sum(int((p["labels"] != -100).sum()) for p in parts))
    return MicroBatches({**p, "step_tokens": tokens} for p in parts)


def micro_loss(model, micro: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """A micro-batch's share of the step's loss: its summed answer-token NLL over the step's
    answer tokens (the shares add up to the step's mean NLL per answer token)."""
    nll, _ = answer_nll(model, {k: micro[k].to(device) for k in ("input_ids", "attention_mask", "labels")})
    return {"loss": nll / micro["step_tokens"].to(device).clamp(min=1)}


def save_adapter(ctx: RunContext, peft_model, cfg: TrioConfig, base: str, chat: bool) -> None:
    """``artifacts/trio-<role>/``: peft's adapter_model.safetensors + adapter_config.json, and
    trio.json (role, base model, prompt format) for ``voltx trio ask``; written then renamed."""
    target = ctx.artifact(f"trio-{cfg.role}")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(tmp, safe_serialization=True)
    (tmp / "trio.json").write_text(json.dumps({"role": cfg.role, "base_model": base, "chat": chat}, indent=1) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    ctx.run.event("artifact", name=target.name, path=str(target), step=ctx.global_step)


def run(ctx: RunContext) -> None:
    from voltx_trio import data as trio_data
    from voltx_trio.models import Adapters, add_lora, load_base, resolve_base
    from voltx_trio.roles import ROLES, uses_chat

    cfg: TrioConfig = ctx.settings
    seed = ctx.config.run.seed
    role = ROLES[cfg.role]
    sets = trio_data.build(cfg, ctx.run.dir / "data", seed)
    base = resolve_base(cfg.base_model, ctx.artifact("base"), seed)
    tokenizer, model = load_base(base)
    chat = uses_chat(tokenizer, cfg.prompt_format, base)
    peft_model = add_lora(model, cfg).to(ctx.device)
    adapters = Adapters(peft_model)

    def enc(records):
        return [encode(tokenizer, role, chat, r, cfg.max_len) for r in records]

    train, pure, hybrid = enc(sets.train), enc(sets.pure_eval), enc(sets.hybrid_eval)
    loss_rows = pure + hybrid + enc(sets.file_eval)
    pure_gold = [r["output"] for r in sets.pure_eval]
    pad = tokenizer.pad_token_id
    args = (peft_model, tokenizer, role, pure, pure_gold, hybrid, loss_rows, cfg.max_new_tokens, ctx.device)
    reference: dict[str, float] = {}

    def evaluate() -> dict[str, float]:
        if not reference:  # the base model and the baselines do not change during the run
            with peft_model.disable_adapter():
                reference.update({f"base_{k}": v for k, v in scores(*args).items()})
            reference["majority_baseline"] = best_constant_verdict(pure_gold)
            reference["unigram_loss"] = unigram_loss(train, loss_rows, len(tokenizer))
            candidates = sorted({r["output"] for r in sets.train})[:2000]
            reference["constant_format_adherence"] = best_constant_format(role, candidates, len(pure), len(hybrid))
        return {**scores(*args), **reference}

    def collate(rows: list[Encoded]) -> MicroBatches:
        return micro_batches(rows, cfg.batch_size, pad)

    def step(micro: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return micro_loss(peft_model, micro, ctx.device)

    def summary(e: dict[str, float]) -> str:
        return (f"exact {e['exact_match']:.1%} (constant {e['majority_baseline']:.1%}, base {e['base_exact_match']:.1%}) | "
                f"held-out loss {e['heldout_loss']:.3f} (unigram {e['unigram_loss']:.3f}, base {e['base_heldout_loss']:.3f}) | "
                f"format {e['format_adherence']:.1%} (constant {e['constant_format_adherence']:.1%}, base {e['base_format_adherence']:.1%})")

    if not ctx.stage_done(STAGE):
        trainable = sum(p.numel() for p in adapters.parameters())
        total = sum(p.numel() for p in peft_model.parameters())
        train_stage(ctx, STAGE, adapters, train, collate, step, Hyper.of(cfg, batch_size=cfg.batch_size * cfg.grad_accum),
                    title=f"Trio {cfg.role} LoRA", evaluate=evaluate, summary=summary,
                    about=f"LoRA r={cfg.lora_r} alpha={cfg.lora_alpha} on {base} ({total:,} in all); "
                          f"{len(sets.train):,} records, {'chat template' if chat else 'plain template'}; "
                          f"{trainable:,} trainable")
        save_adapter(ctx, peft_model, cfg, base, chat)
        ctx.mark_stage_done(STAGE)
