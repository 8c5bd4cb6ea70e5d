"""Training code of phase F3, compositional reasoning (imported only when the phase runs).

Two stages through the shared loop (:mod:`voltx_phases.f3_model` holds the terms):

1. ``renderer``: the encoder and decoder learn to read every text of the training chains
   (questions, steps, answers) back from that text's own frame, with R0 kept consistent
   with the token level R3. Starting from F1's stack it fine-tunes F1's encoder and decoder
   on F3's texts and filled frames; fresh, it is the autoencoder F3 needs. Nothing here maps a
   question to its answer.
2. ``reasoning``: encoder and decoder frozen; the frames of every chain text are computed
   once; the velocity field (slot identity as input), the slot attention (language bias) and
   the identity head learn each chain move ``frame(k) -> frame(k+1)``, with denoising and
   slot-conditional flow matching along the moves, the answers fixed points of the settle gate.

Answering is encode(question) -> RAR -> render the endpoint. Evaluation
(:mod:`voltx_phases.f3_eval`) on the dev records every epoch, on the test records once at the
end, each figure beside its baselines and the RAR ablations. Artifacts:
vfn_foundation.safetensors and the language stack (tokenizer, encoder, renderer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from voltx import artifacts
from voltx.engine.tokenizer import load_tokenizer, save_tokenizer
from voltx.errors import DataError
from voltx.train.batches import steps_per_epoch
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage
from voltx_phases import lang_stack
from voltx_phases.f3_data import (
    BABI_TASKS, ReasoningData, chain_texts, encode, glue, load_data, memory_texts, normalise, pad_tail, task_group, token_rows,
    training_texts,
)
from voltx_phases.f3_memory import Memory, command_phrases, gather_phrases
from voltx_phases.f3_energy import check_settings as check_energy_settings, energy_summary, load_energy
from voltx_phases.f3_eval import Evaluator, evaluate_once
from voltx_phases.f3_model import (
    VFN_FOUNDATION, Moves, all_active, chain_terms, encode_frames, new_reasoner, refine, render_terms, save_vfn_foundation,
)
from voltx_phases.rar_telemetry import rar_summary

RENDERER, STAGE = "renderer", "reasoning"
TEST = "test"
"""Stage name of the once-only test evaluation (``test/<key>``), what the deliverables judge."""
SLOT_FILLER = "slot_filler.safetensors"
"""F1's slot filler, whose slot attention warm-starts F3's (same shape)."""


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
    encoder = lang_stack.new_encoder(vocab, cfg.max_seq_len, recency=True).to(device)  # order matters in a story
    decoder = lang_stack.new_decoder(vocab, cfg.decoder_max_len).to(device)
    return lang_stack.LangStack(tok, encoder, decoder, "new")


# --- the renderer stage -----------------------------------------------------------------------


RENDER_EVAL_TEXTS = 256
"""Held-out steps and answers the renderer reads back after every epoch."""


def renderer_stage(ctx: RunContext, cfg, stack: lang_stack.LangStack, texts: list[str], held: list[str], enc_len: int,
                   dec_len: int) -> None:
    """Encoder + decoder read every chain text back from its own frame (module docstring, stage 1);
    evaluated on ``held`` texts (dev steps and answers): exact read-back, the ceiling of any
    answer rendered from an answer's frame."""
    tok, dev = stack.tokenizer, ctx.device
    model = nn.ModuleDict({"encoder": stack.encoder, "decoder": stack.decoder})
    held = list(dict.fromkeys(held))[:RENDER_EVAL_TEXTS]

    def evaluate() -> dict[str, float]:
        hits = 0
        for start in range(0, len(held), 64):
            chunk = held[start : start + 64]
            frame, _, _ = encode_frames(stack.encoder, *encode(tok, chunk, enc_len, dev, keep="tail"))
            out = stack.decoder.generate(frame, all_active(frame), max_new_tokens=dec_len)
            hits += sum(normalise(tok.decode(g)) == normalise(t) for g, t in zip(out, chunk))
        return {"read_back_exact": hits / max(1, len(held))}

    def collate(rows: list[list[int]]) -> tuple[Tensor, ...]:  # padding only: collated ahead, off the training thread
        return (*pad_tail(rows, enc_len), *pad_tail(rows, dec_len - 1))  # the decoder reads what the encoder sees of a long story

    def step(batch: tuple[Tensor, ...]) -> dict[str, Tensor]:
        ids, mask, out_ids, out_mask = (t.to(dev) for t in batch)
        terms = render_terms(stack.encoder, stack.decoder, ids, mask, out_ids, out_mask)
        return {"loss": terms["render"] + cfg.resolution_weight * terms["resolution"] + cfg.spread_weight * terms["spread"], **terms}

    train_stage(ctx, RENDERER, model, token_rows(tok, texts), collate, step, Hyper.of(cfg, epochs=cfg.renderer_epochs, lr=cfg.renderer_lr,
                min_lr_ratio=cfg.min_lr / cfg.lr), title="Volt X F3 renderer: text -> frame -> the same text",
                evaluate=lambda: evaluate_once(model, evaluate),
                summary=lambda ev: f"read back {ev['read_back_exact']:.1%} of held-out steps and answers",
                metrics=("render_acc",), shown={"render_acc": "Acc"}, labels={"render": "R", "resolution": "M", "spread": "U"}, seed_offset=5,
                background_collate=True)


# --- the reasoning stage --------------------------------------------------------------------------


@dataclass
class FrameBank:
    """The frozen encoder's frames of every training chain text, computed once."""

    slots: Tensor
    active: Tensor
    index: dict[str, int]

    @classmethod
    def build(cls, encoder: nn.Module, tok, texts: list[str], enc_len: int, dev: torch.device, batch: int = 256) -> "FrameBank":
        unique = list(dict.fromkeys(texts))
        slots, active = [], []
        encoder.eval()
        with torch.no_grad():
            for start in range(0, len(unique), batch):
                frame, act, _ = encode_frames(encoder, *encode(tok, unique[start : start + batch], enc_len, dev, keep="tail"))
                slots.append(frame)
                active.append(act)
        return cls(torch.cat(slots), torch.cat(active), {t: i for i, t in enumerate(unique)})


Move = tuple[int, int, int, tuple[int, ...], int, int, tuple[int, ...]]
"""``(src, dst, k, memory, support, held, phrases)``: bank rows of the move's frames, its index in the chain (-1: the
answer as a fixed point), the bank rows of the record's memory (oldest first), the memory index
of ``dst``'s newest copy (-1: not in memory), the bank row of the input T0 holds (the question's,
where the record has no story and ``hold``; else -1: :attr:`voltx_phases.f3_memory.Memory.held`) and
the bank rows of its phrases (:attr:`voltx_phases.f3_memory.Memory.phrases`; none unless held)."""


def held_phrases(records: list[dict], hold: bool, limit: int) -> list[list[str]]:
    """Per record, the phrases T0 holds (:func:`voltx_phases.f3_memory.command_phrases` of its input, where
    the record has no story and ``hold``; else none): the texts the frame bank must also hold."""
    return [command_phrases(chain_texts(r)[0], limit) if hold and limit and not memory_texts(r) else [] for r in records]


def chain_moves(records: list[dict], bank: FrameBank, hold: bool = True, phrases: int = 0) -> list[Move]:
    """Every move of every chain, and per record its answer as a final item ``(a, a, -1, ...)``;
    ``phrases``: how many of a held input's phrases T0 holds (their texts must be in ``bank``)."""
    items = []
    for r, texts in zip(records, held_phrases(records, hold, phrases)):
        ids = [bank.index[t] for t in chain_texts(r)]
        memory = tuple(bank.index[t] for t in memory_texts(r))
        newest = {row: j for j, row in enumerate(memory)}
        held = ids[0] if hold and not memory else -1
        rows = tuple(bank.index[t] for t in texts)
        items += [(a, b, k, memory, newest.get(b, -1), held, rows) for k, (a, b) in enumerate(zip(ids, ids[1:]))]
        items.append((ids[-1], ids[-1], -1, memory, -1, held, rows))
    return items


def collate_moves(bank: FrameBank, batch: list[Move], memory_frames: int, phrases: int = 0) -> Moves:
    """A batch of moves; each memory cut to its newest ``memory_frames`` (a support cut off counts as none);
    the held inputs (and their first ``phrases`` phrases) zero where a move has none (None where no move of
    the batch has one)."""
    device = bank.slots.device
    src = torch.tensor([b[0] for b in batch], device=device)
    dst = torch.tensor([b[1] for b in batch], device=device)
    step = torch.tensor([max(b[2], 0) for b in batch], device=device)
    final = torch.tensor([b[2] < 0 for b in batch], device=device)
    memory = Memory.gather(bank.slots, [list(b[3]) for b in batch], memory_frames)
    held = torch.tensor([b[5] for b in batch], device=device)
    if bool((held >= 0).any()):
        memory.held = bank.slots[held.clamp_min(0)] * (held >= 0)[:, None, None].to(bank.slots.dtype)
    memory.phrases = gather_phrases(bank.slots, [list(b[6]) for b in batch], phrases)
    n = memory.mask.shape[1]
    support = [n - (len(b[3]) - b[4]) if b[4] >= 0 else -1 for b in batch]  # right-aligned position
    support = torch.tensor([p if p >= 0 else -1 for p in support], device=device)
    return Moves(bank.slots[src], bank.slots[dst], bank.active[dst], step, final, memory, support)


RAR_SUMMARY_QUESTIONS = 8
"""Question frames of a batch RAR runs on for the console's per-step ``rar/*`` series: all 64 of a
batch cost 3x the step's own forward and backward (measured), a sample of 8 says as much."""


def reasoning_losses(reasoner: nn.ModuleDict, cfg, gen: torch.Generator, moves: Moves) -> dict[str, Tensor]:
    """Every term of one step (:func:`voltx_phases.f3_model.chain_terms`) and RAR's figures on the
    batch's question frames (the console's ``rar/*`` series)."""
    terms = chain_terms(reasoner, moves, gen, cfg)
    loss = (cfg.chain_weight * terms["chain"] + cfg.flow_weight * terms["flow"] + cfg.denoise_weight * terms["denoise"]
            + cfg.identity_weight * (terms["identity"] + terms["id_head"]) + cfg.read_weight * terms["read"] + cfg.settle_weight * terms["settle"])
    first = (moves.step == 0) & ~moves.final
    if not bool(first.any()):
        first = torch.ones_like(first)
    first = first.nonzero().squeeze(-1)[:RAR_SUMMARY_QUESTIONS]
    questions = moves.src[first]
    with torch.no_grad():
        active = questions.norm(dim=-1) > 0
        memory = moves.memory.rows(first)
        summary = rar_summary(refine(reasoner, questions, active, cfg, memory=memory), active)
    return {"loss": loss, **terms, **{k: torch.tensor(v) for k, v in summary.items()}}


def warm_start(ctx: RunContext, reasoner: nn.ModuleDict, where) -> None:
    """F1's slot filler's attention into F3's (same shape); its VFN is F1's small MLP, F3's the
    ScaledVfn with slot identity, so the VFN starts fresh (said in the log)."""
    path = None if where is None else where / SLOT_FILLER
    if path is None or not path.exists():
        ctx.say("Warm start: no F1 slot filler (slot_filler.safetensors) beside the language stack; the slot attention starts fresh")
        return
    how = "Point f3.lang_from at a finished f1 run."
    filler = artifacts.read(path, "slot_filler", how)
    weights = {k.removeprefix("attention."): v for k, v in filler.tensors.items() if k.startswith("attention.")}
    artifacts.load_into(reasoner["attention"], replace(filler, tensors=weights), how)
    ctx.say(f"Warm start: slot attention from {path}; the VFN starts fresh (F1's is a {filler.meta.get('args', {}).get('hidden')}-wide MLP "
            f"without slot identity, F3's a ScaledVfn {reasoner['vfn'].hidden} wide: no shape to copy)")


def _beside(ev: dict[str, float], key: str) -> str:
    """A task's baselines (and, on test, its RAR-off ablation) as ``best constant x%, ...``."""
    shown = (("best constant", "_best_constant"), ("nearest training answer", "_nearest_train_answer"),
             ("by words", "_nearest_train_answer_words"), ("RAR off", "_accuracy_rar_off"), ("RAR 1 it", "_accuracy_rar_1it"),
             ("endpoint's nearest answer frame", "_endpoint_nearest_answer"))
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
    if "denoise_retrieval_top1" in ev:
        parts.append(f"Denoise: retrieval {ev['denoise_retrieval_top1']:.1%} (frame mean {ev['denoise_frame_mean_retrieval_top1']:.1%}, "
                     f"before RAR {ev['denoise_retrieval_top1_before']:.1%}), cos > 0.9 {ev['denoise_slot_share']:.1%} "
                     f"(frame mean {ev['denoise_frame_mean_share']:.1%}, before RAR {ev['denoise_share_before']:.1%})")
    parts.append(f"RAR gain {ev['rar_gain']:+.1%}" + (f" (one iteration {ev['rar_gain_1it']:+.1%})" if "rar_gain_1it" in ev else ""))
    parts.append(f"RAR converged: {ev['rar_converged_share']:.1%} of queries, {ev['rar_slot_converged_share']:.1%} of slots, "
                 f"in {ev['rar_iterations_mean']:.1f} it (last step {ev['rar_last_step_median']:.4f}); converged and right "
                 f"{ev['rar_converged_correct_share']:.1%}")
    parts += energy_summary(ev)
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


def _reload(ctx: RunContext, module: nn.Module, name: str, kind: str) -> None:
    how = "The run's artifacts are incomplete; start a new run."
    artifacts.load_into(module, artifacts.read(ctx.artifact(name), kind, how), how)


def run(ctx: RunContext) -> None:
    cfg = ctx.settings
    check_energy_settings(cfg)
    data = load_data(cfg, ctx.config.run.seed)
    check_data(ctx, data)
    where = lang_stack.locate_lang_stack(ctx, cfg.lang_from)
    if where is None or lang_stack.knows_glued_words(where):  # a tokenizer trained on glued texts: SCAN actions stay whole
        data.train, data.dev, data.eval = ([glue(r) for r in records] for records in (data.train, data.dev, data.eval))
    stack = language_stack(ctx, cfg, data.train, where)
    tok, dev = stack.tokenizer, ctx.device
    enc_len = min(cfg.max_seq_len, stack.encoder.max_seq_len)
    rendered = [t for r in data.train + data.dev + data.eval for t in chain_texts(r)[1:]]  # steps and answers: rendered whole
    dec_len = lang_stack.fit_decoder(stack, rendered, cfg.decoder_max_len, "f3", ctx.say)
    texts = list(dict.fromkeys(training_texts(data.train)))
    bank_items = len(texts)
    moves_per_epoch = sum(len(chain_texts(r)) for r in data.train)  # moves + one fixed point per record
    ctx.plan_steps({RENDERER: steps_per_epoch(bank_items, cfg.batch_size) * cfg.renderer_epochs,
                    STAGE: steps_per_epoch(moves_per_epoch, cfg.batch_size) * cfg.epochs})
    if ctx.stage_done(RENDERER):
        _reload(ctx, stack.encoder, lang_stack.LANG_ENCODER, "lang_encoder")
        _reload(ctx, stack.decoder, lang_stack.LANG_DECODER, "lang_decoder")
    else:
        renderer_stage(ctx, cfg, stack, texts, [t for r in data.dev for t in chain_texts(r)[1:]], enc_len, dec_len)
        lang_stack.save_lang_stack(ctx, stack)
        ctx.mark_stage_done(RENDERER)
    stack.encoder.requires_grad_(False).eval()  # frozen from here on: the VFN reasons, the renderer only reads
    stack.decoder.requires_grad_(False).eval()
    phrases = held_phrases(data.train, cfg.hold_input, cfg.hold_phrases)  # encoded, never rendered
    bank = FrameBank.build(stack.encoder, tok, texts + [t for p in phrases for t in p], enc_len, dev)
    items = chain_moves(data.train, bank, cfg.hold_input, cfg.hold_phrases)
    reasoner = new_reasoner(cfg).to(dev)
    warm_start(ctx, reasoner, where)
    energy = load_energy(ctx, cfg, where)
    gen = torch.Generator().manual_seed(ctx.config.run.seed + 3)  # corruption, flow points, clocks
    vfn_params = sum(p.numel() for p in reasoner["vfn"].parameters())
    evaluator = Evaluator(ctx, cfg, stack, reasoner, data.dev, data.train, enc_len, dec_len, full=False, energy=energy)
    train_stage(ctx, STAGE, reasoner, items, lambda batch: collate_moves(bank, batch, cfg.memory_frames, cfg.hold_phrases), lambda moves: reasoning_losses(reasoner, cfg, gen, moves),
                Hyper.of(cfg, min_lr_ratio=cfg.min_lr / cfg.lr), title="Volt X F3 Compositional Reasoning: chain moves through RAR",
                evaluate=evaluator, summary=epoch_summary, metrics=("rar/iterations_mean", "rar/converged_share"),
                labels={"chain": "C", "flow": "F", "identity": "I", "denoise": "D", "id_head": "H", "read": "G", "settle": "S"},
                generators={"f3": gen}, shard=("vfn",), about=f"ScaledVfn {vfn_params:,} with slot identity: hidden {cfg.vfn_hidden}, {cfg.vfn_blocks} blocks; "
                f"{len(items)} moves over {len(bank.index)} frames")
    ctx.mark_stage_done(STAGE)
    save_vfn_foundation(ctx, reasoner, cfg)
    ctx.say(f"Artifacts: {VFN_FOUNDATION}, {lang_stack.LANG_TOKENIZER}, {lang_stack.LANG_ENCODER}, "
            f"{lang_stack.LANG_DECODER} in {ctx.artifacts_dir}")
    # The judged figures: the test records, once, after training (the epochs saw only dev).
    test = evaluate_once(reasoner, Evaluator(ctx, cfg, stack, reasoner, data.eval, data.train, enc_len, dec_len, full=True, energy=energy))
    ctx.record_evaluation(TEST, ctx.global_step, cfg.epochs, test)
    ctx.say(f"[{TEST}] {len(data.eval)} test records: {epoch_summary(test)}")
