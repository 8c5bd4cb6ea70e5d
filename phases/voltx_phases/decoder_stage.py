"""The frozen-encoder -> decoder stage shared by the translator and F1 (imported only to run).

A :class:`~voltx.engine.slot_decoder.SlotDecoder` learns, teacher-forced, to render token
rows from the 16 slot vectors of a frozen :class:`~voltx.engine.cnn_frame_encoder.CnnFrameEncoder`:
the context it decodes from at inference. The translator renders code, F1 sentences; each
passes its own rows, validation batches and settings.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import torch

from voltx.engine.slot_decoder import IGNORE_INDEX, SlotDecoder
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.tokenizer import EOS_ID, PAD_ID, pad_rows
from voltx.train.context import RunContext
from voltx.train.kit import Hyper, train_stage


def majority_token(rows: list[list[int]]) -> int:
    """The training targets' most frequent token, EOS included (it ends every target): the
    trivial baseline of token accuracy."""
    counts = Counter(t for row in rows for t in row)
    counts[EOS_ID] += len(rows)
    return counts.most_common(1)[0][0]


def train_decoder(ctx: RunContext, encoder: CnnFrameEncoder, decoder: SlotDecoder, tok, rows: list[list[int]],
                  valid: list[list[list[int]]], hyper: Hyper, *, title: str, sample_count: int, max_new_tokens: int,
                  baseline: bool = False, tag: bool = True,
                  after_epoch: Callable[[int], str | None] | None = None) -> dict[str, float]:
    """Train ``decoder`` to render ``rows`` (token ids, at most ``decoder.max_len - 1`` each) from
    ``encoder``'s slot context; ``valid`` are the validation batches (rows each).

    Evaluation: mean loss and token accuracy over ``valid`` (with ``baseline``, also the
    accuracy of always predicting :func:`majority_token`), and ``sample_count`` rows of the
    first batch decoded greedily into a ``samples`` event."""
    device = ctx.device
    encoder.eval().requires_grad_(False)
    majority = majority_token(rows) if baseline else None

    def forward(ids: torch.Tensor, mask: torch.Tensor):
        ids, mask = ids.to(device), mask.to(device)
        with torch.no_grad():
            context, active = encoder.slot_context(encoder(ids, mask), mask)
        inputs, labels = decoder.teacher_forced_batch(ids, mask)
        loss, acc = decoder.loss_and_accuracy(decoder(inputs, context, active), labels)
        return loss, acc, labels, context, active

    def step(batch) -> dict[str, torch.Tensor]:
        loss, acc, _, _, _ = forward(*batch)
        return {"loss": loss, "token_acc": acc}

    def evaluate() -> dict[str, float]:
        loss_sum = acc_sum = hits = total = 0.0
        for part in valid:
            loss, acc, labels, _, _ = forward(*pad_rows(part, PAD_ID))
            loss_sum, acc_sum = loss_sum + float(loss), acc_sum + float(acc)
            if majority is not None:
                real = labels.ne(IGNORE_INDEX)
                hits += float((labels.eq(majority) & real).sum())
                total += float(real.sum())
        if valid and sample_count:
            sample = valid[0][:sample_count]
            _, _, _, context, active = forward(*pad_rows(sample, PAD_ID))
            generated = decoder.generate(context, active, max_new_tokens=max_new_tokens)
            samples = [{"reference": tok.decode(row), "decoded": tok.decode(gen)} for row, gen in zip(sample, generated)]
            ctx.run.event("samples", stage="decoder", step=ctx.global_step, samples=samples)
        n = max(1, len(valid))
        out = {"valid_loss": loss_sum / n, "valid_token_accuracy": acc_sum / n}
        if majority is not None:
            out["valid_token_accuracy_majority"] = hits / max(1.0, total)
        return out

    def summary(ev: dict[str, float]) -> str:
        base = f" (majority token {ev['valid_token_accuracy_majority']:.2%})" if majority is not None else ""
        return f"Valid Loss: {ev['valid_loss']:.4f} | Valid Acc: {ev['valid_token_accuracy']:.2%}{base}"

    return train_stage(
        ctx, "decoder", decoder, rows, lambda batch: pad_rows(batch, PAD_ID), step, hyper, title=title, evaluate=evaluate,
        summary=summary, metrics=("token_acc",), shown={"token_acc": "Acc"}, seed_offset=1, after_epoch=after_epoch, tag=tag,
        background_collate=True,  # padding only: collated ahead, off the training thread
    )
