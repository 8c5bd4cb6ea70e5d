"""Training code of the translator phase (imported only when the phase runs).

Stages, each resumable through the shared loop:
1. tokenizer: byte-level BPE on the corpus (or the training code) -> code_tokenizer.json
2. encoder: CNN encoder, 0.8 * symmetric InfoNCE(tau) on (code, docstring) summaries
   + 0.2 * role cross-entropy (code role labeller; docstring tokens are "other"), padding
   masked everywhere -> code_encoder.safetensors
3. decoder: reconstructs the code from the frozen encoder's 16 R0 slot vectors, the same
   context it decodes from at inference (the original trained on per-token features and
   decoded from slots) -> code_decoder.safetensors
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from voltx import artifacts
from voltx.data.code_pairs import CodePair, extract_stdlib_pairs, read_codesearchnet_jsonl, split_train_valid
from voltx.engine.code_decoder import CodeDecoder
from voltx.engine.code_encoder import ENCODER_KINDS, CodeEncoder
from voltx.engine.code_roles import ROLE_OTHER, label_tokens
from voltx.engine.tokenizer import PAD_ID, corpus_texts, load_tokenizer, pad_rows, save_tokenizer, train_bpe
from voltx.errors import ConfigError, DataError
from voltx.train.batches import EpochBatches, steps_per_epoch
from voltx.train.context import RunContext
from voltx.train.loop import Stage, fit
from voltx.train.schedules import warmup_cosine
from voltx_phases.translator import TranslatorConfig

STAGES = ("tokenizer", "encoder", "decoder")
IGNORE = -100


def fmt_lr(lr: float) -> str:
    """2.5e-4 style, as in the seed's progress lines."""
    mantissa, exp = f"{lr:.1e}".split("e")
    return f"{mantissa}e{int(exp)}"


# --- data -----------------------------------------------------------------------------------


def load_pairs(ctx: RunContext, cfg: TranslatorConfig) -> tuple[list[CodePair], list[CodePair]]:
    if cfg.data:
        pairs = read_codesearchnet_jsonl(cfg.data)
        source = cfg.data
    else:
        pairs = extract_stdlib_pairs()
        source = "Python standard library (built-in corpus)"
    train, valid = split_train_valid(list(pairs), cfg.valid_fraction, seed=ctx.config.run.seed)
    if cfg.max_examples:
        n_valid = max(1, round(cfg.max_examples * cfg.valid_fraction))
        train, valid = train[: cfg.max_examples - n_valid], valid[:n_valid]
    if len(train) < 2 or len(valid) < 2:
        raise DataError(f"{source}: only {len(train)} training and {len(valid)} validation pairs; need at least 2 of each.")
    ctx.say(f"Data: {source}: {len(train)} train / {len(valid)} valid (code, docstring) pairs")
    ctx.run.event("data", source=source, train=len(train), valid=len(valid))
    return train, valid


def tokenize(tok, pairs: list[CodePair], max_len: int) -> list[tuple[list[int], list[int], list[int]]]:
    """(code ids, code role labels, docstring ids) per pair, truncated to ``max_len``."""
    items = []
    for start in range(0, len(pairs), 1024):
        chunk = pairs[start : start + 1024]
        codes = tok.encode_batch([p.code for p in chunk], add_special_tokens=False)
        docs = tok.encode_batch([p.docstring for p in chunk], add_special_tokens=False)
        for code, doc in zip(codes, docs):
            ids = code.ids[:max_len]
            roles = label_tokens(code.tokens)[:max_len]
            items.append((ids, roles, doc.ids[:max_len] or [PAD_ID]))
    return items


def collate(items: list[tuple[list[int], list[int], list[int]]]) -> tuple[torch.Tensor, ...]:
    code, code_mask = pad_rows([c for c, _, _ in items], PAD_ID)
    roles, _ = pad_rows([r for _, r, _ in items], IGNORE)
    doc, doc_mask = pad_rows([d for _, _, d in items], PAD_ID)
    return code, code_mask, roles, doc, doc_mask


def valid_batches(items: list, batch_size: int, limit: int) -> list[tuple[torch.Tensor, ...]]:
    size = min(batch_size, len(items))
    count = min(limit, len(items) // size)
    return [collate(items[i * size : (i + 1) * size]) for i in range(count)]


# --- weights in and out ---------------------------------------------------------------------


def load_weights(module: torch.nn.Module, path: str, kind: str | tuple[str, ...], how: str) -> None:
    """``module``'s weights from artifact ``path``; untagged files (translator files written
    before artifacts recorded their kind, per-epoch files) load too."""
    artifacts.load_into(module, artifacts.read(path, kind, how, untagged=True), how)


WEIGHTS_ONLY = "weights only, not resumable: --resume reads the run's checkpoints/"


def save_model(ctx: RunContext, module: CodeEncoder | CodeDecoder, name: str, output: str, config: dict) -> Path:
    """The stage's final weights: a run artifact, plus ``output`` when set (the seed's --output).
    The seed printed "Checkpoint saved:" for these; they are exports, not resumable checkpoints."""
    kind = Path(name).stem
    path = ctx.save_artifact(name, module.state_dict(), kind, module.init_args(), config=config)
    if output:
        out = artifacts.save(output, module.state_dict(), kind, module.init_args(), phase=ctx.phase.name, config=config)
        ctx.say(f"Weights saved: {out} (final; {WEIGHTS_ONLY})")
        return out
    ctx.say(f"Weights saved: {path} (final; {WEIGHTS_ONLY})")
    return path


def epoch_file(ctx: RunContext, output: str, name: str, epoch: int) -> Path:
    base = Path(output) if output else ctx.artifact(name)
    return base.with_name(f"{base.stem}_epoch_{epoch}{base.suffix}")


# --- stages ---------------------------------------------------------------------------------


def tokenizer_stage(ctx: RunContext, cfg: TranslatorConfig, train: list[CodePair] | None):
    artifact = ctx.artifact("code_tokenizer.json")
    if cfg.tokenizer.path:
        tok = load_tokenizer(cfg.tokenizer.path)
        ctx.say(f"Tokenizer: {cfg.tokenizer.path} (vocab {tok.get_vocab_size()})")
        return tok
    if "tokenizer" not in cfg.stages:
        raise ConfigError("translator.stages skips the tokenizer but translator.tokenizer.path is empty; set it to a trained tokenizer.")
    if artifact.exists():  # resumed run: the stage already finished
        return load_tokenizer(artifact)
    if cfg.tokenizer.corpus:
        texts = list(corpus_texts(cfg.tokenizer.corpus, max_files=cfg.tokenizer.max_files))
        source = ", ".join(cfg.tokenizer.corpus)
    else:
        texts = [p.code for p in (train or [])[: cfg.tokenizer.max_files]]
        source = "training code"
    if not texts:
        raise DataError(f"tokenizer corpus ({source}) has no texts of 50-50,000 characters; point --corpus at .py/.txt/.jsonl files.")
    ctx.say(f"Training BPE tokenizer: {len(texts)} texts from {source}, vocab {cfg.tokenizer.vocab_size}")
    ctx.run.event("stage_start", stage="tokenizer", step=ctx.global_step, texts=len(texts))
    tok = train_bpe(texts, vocab_size=cfg.tokenizer.vocab_size, min_frequency=cfg.tokenizer.min_frequency)
    save_tokenizer(tok, artifact)
    if cfg.tokenizer.output:
        save_tokenizer(tok, cfg.tokenizer.output)
    ctx.say(f"Tokenizer saved: {cfg.tokenizer.output or artifact} (vocab {tok.get_vocab_size()})")
    ctx.mark_stage_done("tokenizer")
    return tok


def encoder_losses(encoder: CodeEncoder, batch, device, tau: float) -> dict[str, torch.Tensor]:
    """The encoder objective's terms on one collated batch: symmetric InfoNCE on the
    (code, docstring) summaries, role cross-entropy, and role accuracy / top-1 for logging."""
    code, code_mask, roles, doc, doc_mask = (t.to(device, non_blocking=True) for t in batch)
    co, do = encoder(code, code_mask), encoder(doc, doc_mask)
    logits = co.summary @ do.summary.T / tau
    target = torch.arange(logits.shape[0], device=device)
    contrastive = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    # Role loss over real tokens only: code tokens get the labeller's roles, docstring tokens "other".
    doc_roles = torch.full_like(doc, ROLE_OTHER).masked_fill(~doc_mask, IGNORE)
    role_logits = torch.cat([co.role_logits.flatten(0, 1), do.role_logits.flatten(0, 1)])
    role_targets = torch.cat([roles.flatten(), doc_roles.flatten()])
    role = F.cross_entropy(role_logits, role_targets, ignore_index=IGNORE)
    code_valid = roles.ne(IGNORE)
    role_acc = (co.role_logits.argmax(-1).eq(roles) & code_valid).sum() / code_valid.sum().clamp_min(1)
    top1 = (logits.argmax(1) == target).float().mean()
    return {"contrastive": contrastive, "role": role, "role_acc": role_acc, "top1": top1}


def encoder_stage(ctx: RunContext, cfg: TranslatorConfig, encoder: CodeEncoder, train_items, valid_items) -> None:
    ec = cfg.encoder
    device = ctx.device
    batches = EpochBatches(train_items, ec.batch_size, ctx.config.run.seed, collate)
    total = batches.per_epoch * ec.epochs
    opt = torch.optim.AdamW(encoder.parameters(), lr=ec.lr, weight_decay=ec.weight_decay)
    tau = ec.temperature

    def losses(batch) -> dict[str, torch.Tensor]:
        return encoder_losses(encoder, batch, device, tau)

    def step(batch):
        out = losses(batch)
        loss = ec.contrastive_weight * out["contrastive"] + ec.role_weight * out["role"]
        return {"loss": loss, "contrastive": out["contrastive"], "role": out["role"]}

    vbatches = valid_batches(valid_items, ec.batch_size, ec.valid_batches)

    def evaluate() -> dict[str, float]:
        sums = {"contrastive": 0.0, "role_acc": 0.0, "top1": 0.0}
        for batch in vbatches:
            out = losses(batch)
            for k in sums:
                sums[k] += float(out[k])
        n = max(1, len(vbatches))
        size = vbatches[0][0].shape[0] if vbatches else 1
        top1 = sums["top1"] / n
        return {
            "valid_loss": sums["contrastive"] / n,
            "valid_retrieval_top1": top1,
            "valid_retrieval_chance": 1.0 / size,
            "valid_retrieval_lift": top1 * size,
            "valid_role_accuracy": sums["role_acc"] / n,
        }

    def line(info) -> str:
        l = info["losses"]
        return (
            f"[Epoch {info['epoch']}/{info['epochs']}] Step {info['batch']}/{info['per_epoch']} | "
            f"Loss: {l['loss']:.3f} (C: {l['contrastive']:.3f} R: {l['role']:.3f}) | LR: {fmt_lr(info['lr'])} | "
            f"{info['samples_per_sec']:.1f} samples/sec"
        )

    def epoch_end(epoch: int, means: dict, ev: dict, seconds: float) -> str:
        ctx.say(
            f"[Epoch {epoch}/{ec.epochs}] Complete | Train Loss: {means.get('loss', 0):.3f} "
            f"(C: {means.get('contrastive', 0):.3f} R: {means.get('role', 0):.3f}) | Valid Loss: {ev['valid_loss']:.3f} | "
            f"Retrieval@1: {ev['valid_retrieval_top1']:.2%} (chance {ev['valid_retrieval_chance']:.2%}) | "
            f"Role Acc: {ev['valid_role_accuracy']:.2%} | Time: {seconds:.1f}s"
        )
        path = epoch_file(ctx, ec.output, "code_encoder.safetensors", epoch)
        artifacts.save(path, encoder.state_dict(), "code_encoder", encoder.init_args(), epoch=epoch)
        return f"Weights saved: {path} (epoch {epoch}; {WEIGHTS_ONLY})"

    stage = Stage(
        name="encoder", model=encoder, optimizer=opt, batches=batches, epochs=ec.epochs, step=step,
        lr_at=lambda s: warmup_cosine(s, max_lr=ec.lr, warmup=ec.warmup, total=total, min_ratio=ec.min_lr_ratio),
        evaluate=evaluate, grad_clip=ec.grad_clip, progress_line=line, epoch_end=epoch_end, metrics=("role_acc", "top1"),
    )
    ctx.say(f"=== Volt X Encoder Training ===\nParams:  {sum(p.numel() for p in encoder.parameters()):,}\nSteps:   {total} ({batches.per_epoch}/epoch)")
    fit(ctx, stage)


def decoder_stage(ctx: RunContext, cfg: TranslatorConfig, encoder: CodeEncoder, decoder: CodeDecoder, tok, train_items, valid_items) -> None:
    dc = cfg.decoder
    device = ctx.device
    encoder.eval().requires_grad_(False)
    batches = EpochBatches(train_items, dc.batch_size, ctx.config.run.seed + 1, collate)
    total = batches.per_epoch * dc.epochs
    opt = torch.optim.AdamW(decoder.parameters(), lr=dc.lr, weight_decay=dc.weight_decay)

    def forward(batch):
        code, code_mask = batch[0].to(device), batch[1].to(device)
        with torch.no_grad():
            context, active = encoder.slot_context(encoder(code, code_mask), code_mask)
        inputs, labels = decoder.teacher_forced_batch(code, code_mask)
        return decoder.loss_and_accuracy(decoder(inputs, context, active), labels), context, active

    def step(batch):
        (loss, acc), _, _ = forward(batch)
        return {"loss": loss, "token_acc": acc}

    vbatches = valid_batches(valid_items, dc.batch_size, dc.valid_batches)

    def evaluate() -> dict[str, float]:
        loss_sum = acc_sum = 0.0
        for batch in vbatches:
            (loss, acc), _, _ = forward(batch)
            loss_sum, acc_sum = loss_sum + float(loss), acc_sum + float(acc)
        n = max(1, len(vbatches))
        if vbatches and dc.sample_count:
            batch = tuple(t[: dc.sample_count] for t in vbatches[0])
            _, context, active = forward(batch)
            generated = decoder.generate(context, active, max_new_tokens=min(64, dc.max_len))
            samples = [
                {"reference": tok.decode([i for i in row.tolist() if i != PAD_ID]), "decoded": tok.decode(gen)}
                for row, gen in zip(batch[0], generated)
            ]
            ctx.run.event("samples", stage="decoder", step=ctx.global_step, samples=samples)
        return {"valid_loss": loss_sum / n, "valid_token_accuracy": acc_sum / n}

    def line(info) -> str:
        l = info["losses"]
        return (
            f"[Epoch {info['epoch']}/{info['epochs']}] Step {info['batch']}/{info['per_epoch']} | Loss: {l['loss']:.4f} | "
            f"Acc: {info['metrics']['token_acc']:.2%} | LR: {fmt_lr(info['lr'])} | {info['samples_per_sec']:.1f} samples/sec"
        )

    def epoch_end(epoch: int, means: dict, ev: dict, seconds: float) -> str:
        ctx.say(
            f"[Epoch {epoch}/{dc.epochs}] Complete | Train Loss: {means.get('loss', 0):.4f} | Valid Loss: {ev['valid_loss']:.4f} "
            f"| Valid Acc: {ev['valid_token_accuracy']:.2%} | Time: {seconds:.1f}s"
        )
        path = epoch_file(ctx, dc.output, "code_decoder.safetensors", epoch)
        artifacts.save(path, decoder.state_dict(), "code_decoder", decoder.init_args(), epoch=epoch)
        return f"Weights saved: {path} (epoch {epoch}; {WEIGHTS_ONLY})"

    stage = Stage(
        name="decoder", model=decoder, optimizer=opt, batches=batches, epochs=dc.epochs, step=step,
        lr_at=lambda s: warmup_cosine(s, max_lr=dc.lr, warmup=dc.warmup, total=total, min_ratio=dc.min_lr_ratio),
        evaluate=evaluate, grad_clip=dc.grad_clip, progress_line=line, epoch_end=epoch_end, metrics=("token_acc",),
    )
    ctx.say(f"=== Volt X Decoder Training ===\nParams:  {sum(p.numel() for p in decoder.parameters()):,}\nSteps:   {total} ({batches.per_epoch}/epoch)")
    fit(ctx, stage)


# --- the phase --------------------------------------------------------------------------------


def run(ctx: RunContext) -> None:
    cfg: TranslatorConfig = ctx.settings
    unknown = [s for s in cfg.stages if s not in STAGES]
    if unknown or not cfg.stages:
        raise ConfigError(f"translator.stages: unknown stage(s) {unknown} ; valid stages, in order: {', '.join(STAGES)}")
    needs_pairs = "encoder" in cfg.stages or "decoder" in cfg.stages or not cfg.tokenizer.corpus
    train, valid = load_pairs(ctx, cfg) if needs_pairs and not (cfg.stages == ["tokenizer"] and cfg.tokenizer.corpus) else (None, None)
    tok = tokenizer_stage(ctx, cfg, train)
    if cfg.stages == ["tokenizer"]:
        return
    vocab = tok.get_vocab_size()
    max_len = max(cfg.encoder.max_seq_len, cfg.decoder.max_len)
    train_items, valid_items = tokenize(tok, train, max_len), tokenize(tok, valid, max_len)
    plan = {"encoder": steps_per_epoch(len(train_items), cfg.encoder.batch_size) * cfg.encoder.epochs,
            "decoder": steps_per_epoch(len(train_items), cfg.decoder.batch_size) * cfg.decoder.epochs}
    ctx.plan_steps({name: steps for name, steps in plan.items() if name in cfg.stages})  # progress/ETA over both
    encoder = CodeEncoder(vocab_size=vocab, max_seq_len=cfg.encoder.max_seq_len).to(ctx.device)
    how = "Train one with `voltx train-encoder` or `voltx run translator`."
    config = asdict(cfg)
    if "encoder" in cfg.stages:
        if ctx.stage_done("encoder"):
            load_weights(encoder, str(ctx.artifact("code_encoder.safetensors")), "code_encoder", how)
        else:
            enc_items = [(c[: cfg.encoder.max_seq_len], r[: cfg.encoder.max_seq_len], d[: cfg.encoder.max_seq_len]) for c, r, d in train_items]
            encoder_stage(ctx, cfg, encoder, enc_items, valid_items)
            save_model(ctx, encoder, "code_encoder.safetensors", cfg.encoder.output, config)
            ctx.mark_stage_done("encoder")
    elif cfg.encoder.path:
        load_weights(encoder, cfg.encoder.path, ENCODER_KINDS, how)
    else:
        raise ConfigError("translator.stages skips the encoder but translator.encoder.path is empty; set it (train-decoder --encoder).")
    if "decoder" in cfg.stages:
        decoder = CodeDecoder(vocab_size=vocab, max_len=cfg.decoder.max_len).to(ctx.device)
        dec_items = [(c[: cfg.decoder.max_len - 1], r[: cfg.decoder.max_len - 1], d) for c, r, d in train_items]
        dec_valid = [(c[: cfg.decoder.max_len - 1], r[: cfg.decoder.max_len - 1], d) for c, r, d in valid_items]
        decoder_stage(ctx, cfg, encoder, decoder, tok, dec_items, dec_valid)
        save_model(ctx, decoder, "code_decoder.safetensors", cfg.decoder.output, config)
        ctx.mark_stage_done("decoder")
