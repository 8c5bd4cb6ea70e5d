"""Training code of the translator phase (imported only when the phase runs).

Stages, each resumable through the shared loop:
1. tokenizer: byte-level BPE on the corpus (or the training code) -> code_tokenizer.json
2. encoder: CNN encoder, 0.8 * symmetric InfoNCE(tau) on (code, docstring) summaries
   + 0.2 * role cross-entropy (code role labeller; docstring tokens are "other"), padding
   masked everywhere -> code_encoder.safetensors
3. decoder: reconstructs the code from the frozen encoder's 16 R0 slot vectors, the same
   context it decodes from at inference (the original trained on per-token features and
   decoded from slots; the stage is :mod:`voltx_phases.decoder_stage`, shared with F1)
   -> code_decoder.safetensors
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from voltx import artifacts
from voltx.data.code_pairs import CodePair, extract_stdlib_pairs, read_codesearchnet_jsonl, split_train_valid
from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.cnn_frame_encoder import ENCODER_KINDS, CnnFrameEncoder
from voltx.engine.code_roles import ROLE_OTHER, label_tokens
from voltx.engine.tokenizer import PAD_ID, corpus_texts, load_tokenizer, pad_rows, save_tokenizer, train_bpe
from voltx.errors import ConfigError, DataError
from voltx.train.batches import steps_per_epoch
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_phases import translator_eval as baselines
from voltx_phases.decoder_stage import train_decoder
from voltx_phases.translator import TranslatorConfig
from voltx_phases.translator_eval import IGNORE

STAGES = ("tokenizer", "encoder", "decoder")


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
    capped = f" (max_examples = {cfg.max_examples} of {len(pairs):,})" if cfg.max_examples and cfg.max_examples < len(pairs) else ""
    ctx.say(f"Data: {source}: {len(train)} train / {len(valid)} valid (code, docstring) pairs{capped}")
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


def valid_parts(items: list, batch_size: int, limit: int) -> list[list]:
    """Validation batches: at most ``limit`` full ones of ``batch_size`` (or all items when fewer)."""
    size = min(batch_size, len(items))
    return [items[i * size : (i + 1) * size] for i in range(min(limit, len(items) // size))]


# --- weights in and out ---------------------------------------------------------------------


def load_weights(module: torch.nn.Module, path: str, kind: str | tuple[str, ...], how: str) -> None:
    """``module``'s weights from artifact ``path``; untagged files (translator files written
    before artifacts recorded their kind, per-epoch files) load too."""
    artifacts.load_into(module, artifacts.read(path, kind, how, untagged=True), how)


WEIGHTS_ONLY = "weights only, not resumable: --resume reads the run's checkpoints/"


def save_model(ctx: RunContext, module: CnnFrameEncoder | SlotDecoder, name: str, output: str, config: dict) -> Path:
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


def encoder_losses(encoder: CnnFrameEncoder, batch, device, tau: float) -> dict[str, torch.Tensor]:
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


def encoder_stage(ctx: RunContext, cfg: TranslatorConfig, encoder: CnnFrameEncoder, tok, train_items, valid_items) -> None:
    ec = cfg.encoder
    device = ctx.device
    tau = ec.temperature

    def losses(batch) -> dict[str, torch.Tensor]:
        return encoder_losses(encoder, batch, device, tau)

    def step(batch):
        out = losses(batch)
        loss = ec.contrastive_weight * out["contrastive"] + ec.role_weight * out["role"]
        return {"loss": loss, "contrastive": out["contrastive"], "role": out["role"]}

    vbatches = [collate(part) for part in valid_parts(valid_items, ec.batch_size, ec.valid_batches)]
    pools = baselines.retrieval_pools(valid_items, ec.valid_batches)
    pool_size = len(pools[0]) if pools else 1
    # What the verdicts are judged against, fixed for the stage: measured once, at the first evaluation.
    untrained = copy.deepcopy(encoder).eval()  # before train_stage loads a checkpoint: the initial weights
    fixed: dict[str, float] = {}

    def reference() -> dict[str, float]:
        nonlocal untrained
        if not fixed:
            fixed["valid_role_accuracy_majority"] = baselines.majority_role_accuracy(vbatches, baselines.majority_role(train_items))
            fixed["valid_retrieval_lift_word_overlap"] = baselines.word_overlap_top1(pools, tok.decode) * pool_size
            fixed["valid_retrieval_lift_untrained"] = baselines.encoder_top1(untrained, pools, device) * pool_size
            untrained = None
        return fixed

    def evaluate() -> dict[str, float]:
        sums = {"contrastive": 0.0, "role_acc": 0.0}
        for batch in vbatches:
            out = losses(batch)
            for k in sums:
                sums[k] += float(out[k])
        n = max(1, len(vbatches))
        top1 = baselines.encoder_top1(encoder, pools, device)
        return {
            "valid_loss": sums["contrastive"] / n,
            "valid_retrieval_top1": top1,
            "valid_retrieval_chance": 1.0 / pool_size,
            "valid_retrieval_lift": top1 * pool_size,
            "valid_role_accuracy": sums["role_acc"] / n,
            **reference(),
        }

    def summary(ev: dict) -> str:
        return (f"Valid Loss: {ev['valid_loss']:.3f} | Retrieval@1: {ev['valid_retrieval_top1']:.2%} "
                f"(chance {ev['valid_retrieval_chance']:.2%}, word overlap {ev['valid_retrieval_lift_word_overlap'] * ev['valid_retrieval_chance']:.2%}) "
                f"| Role Acc: {ev['valid_role_accuracy']:.2%} (majority {ev['valid_role_accuracy_majority']:.2%})")

    # The seed's lines: no stage tag, three decimals, the step line without the accuracies.
    train_stage(ctx, "encoder", encoder, train_items, collate, step, Hyper.of(ec), title="Volt X Encoder Training",
                evaluate=evaluate, summary=summary, metrics=("role_acc", "top1"), labels={"contrastive": "C", "role": "R"},
                after_epoch=lambda epoch: save_epoch(ctx, encoder, ec.output, "code_encoder.safetensors", epoch), tag=False, digits=3,
                background_collate=True)  # padding only: collated ahead, off the training thread


def save_epoch(ctx: RunContext, module: CnnFrameEncoder | SlotDecoder, output: str, name: str, epoch: int) -> str:
    path = epoch_file(ctx, output, name, epoch)
    artifacts.save(path, module.state_dict(), Path(name).stem, module.init_args(), epoch=epoch)
    return f"Weights saved: {path} (epoch {epoch}; {WEIGHTS_ONLY})"


def decoder_stage(ctx: RunContext, cfg: TranslatorConfig, encoder: CnnFrameEncoder, decoder: SlotDecoder, tok, train_items, valid_items) -> None:
    """The shared decoder stage (:mod:`voltx_phases.decoder_stage`) on the code of the pairs, with the seed's lines."""
    dc = cfg.decoder
    valid = [[c for c, _, _ in part] for part in valid_parts(valid_items, dc.batch_size, dc.valid_batches)]
    train_decoder(ctx, encoder, decoder, tok, [c for c, _, _ in train_items], valid, Hyper.of(dc), title="Volt X Decoder Training",
                  sample_count=dc.sample_count, max_new_tokens=min(64, dc.max_len), baseline=True, tag=False,
                  after_epoch=lambda epoch: save_epoch(ctx, decoder, dc.output, "code_decoder.safetensors", epoch))


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
    encoder = CnnFrameEncoder(vocab_size=vocab, max_seq_len=cfg.encoder.max_seq_len).to(ctx.device)
    how = "Train one with `voltx train-encoder` or `voltx run translator`."
    config = asdict(cfg)
    if "encoder" in cfg.stages:
        if ctx.stage_done("encoder"):
            load_weights(encoder, str(ctx.artifact("code_encoder.safetensors")), "code_encoder", how)
        else:
            enc_items = [(c[: cfg.encoder.max_seq_len], r[: cfg.encoder.max_seq_len], d[: cfg.encoder.max_seq_len]) for c, r, d in train_items]
            encoder_stage(ctx, cfg, encoder, tok, enc_items, valid_items)
            save_model(ctx, encoder, "code_encoder.safetensors", cfg.encoder.output, config)
            ctx.mark_stage_done("encoder")
    elif cfg.encoder.path:
        load_weights(encoder, cfg.encoder.path, ENCODER_KINDS, how)
    else:
        raise ConfigError("translator.stages skips the encoder but translator.encoder.path is empty; set it (train-decoder --encoder).")
    if "decoder" in cfg.stages:
        decoder = SlotDecoder(vocab_size=vocab, max_len=cfg.decoder.max_len).to(ctx.device)
        dec_items = [(c[: cfg.decoder.max_len - 1], r[: cfg.decoder.max_len - 1], d) for c, r, d in train_items]
        dec_valid = [(c[: cfg.decoder.max_len - 1], r[: cfg.decoder.max_len - 1], d) for c, r, d in valid_items]
        decoder_stage(ctx, cfg, encoder, decoder, tok, dec_items, dec_valid)
        save_model(ctx, decoder, "code_decoder.safetensors", cfg.decoder.output, config)
        ctx.mark_stage_done("decoder")
