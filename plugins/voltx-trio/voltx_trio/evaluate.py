"""Held-out measurements of a trio adapter, each beside its trivial baseline and the base model.

* exact match: greedy answers to held-out pure puzzles equal to the verdict; baseline: the best
  constant verdict on the same puzzles; ablation: the base model without the adapter.
* held-out loss (nats per answer token) and perplexity; baseline: the training answers' unigram
  loss; ablation: the base model's.
* format adherence: held-out answers in the role's format (:meth:`voltx_trio.roles.Role.follows_format`);
  baseline: the best constant output among the training answers; ablation: the base model's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from voltx_trio.puzzles import VERDICTS


@dataclass
class Encoded:
    prompt: list[int]
    answer: list[int]


def pad_batch(rows: list[Encoded], pad_id: int, left: bool = False, with_answer: bool = True) -> dict[str, torch.Tensor]:
    """input ids, attention mask and labels (-100 outside answers) of ``rows``, padded to one length."""
    seqs = [r.prompt + (r.answer if with_answer else []) for r in rows]
    width = max(map(len, seqs))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, (r, seq) in enumerate(zip(rows, seqs)):
        at = width - len(seq) if left else 0
        ids[i, at:at + len(seq)] = torch.tensor(seq)
        mask[i, at:at + len(seq)] = 1
        if with_answer:
            labels[i, at + len(r.prompt):at + len(seq)] = torch.tensor(r.answer)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def answer_nll(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed negative log-likelihood of the answer tokens, their count)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100, reduction="sum")
    return nll, (labels != -100).sum()


def heldout_loss(model, rows: list[Encoded], pad_id: int, device, batch: int = 16) -> float:
    total, count = 0.0, 0
    for i in range(0, len(rows), batch):
        b = {k: v.to(device) for k, v in pad_batch(rows[i:i + batch], pad_id).items()}
        nll, n = answer_nll(model, b)
        total, count = total + float(nll), count + int(n)
    return total / max(count, 1)


def generate(model, tokenizer, rows: list[Encoded], max_new_tokens: int, device, batch: int = 32) -> list[str]:
    """Greedy answers to ``rows``' prompts, cut at the end-of-sequence token."""
    out: list[str] = []
    for i in range(0, len(rows), batch):
        b = pad_batch(rows[i:i + batch], tokenizer.pad_token_id, left=True, with_answer=False)
        ids = model.generate(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        for row in ids[:, b["input_ids"].shape[1]:].tolist():
            if tokenizer.eos_token_id in row:
                row = row[:row.index(tokenizer.eos_token_id)]
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return out


def unigram_loss(train: list[Encoded], held: list[Encoded], vocab: int) -> float:
    """Held-out answer-token loss of the training answers' token frequencies (add-one smoothed):
    the loss a model reaches knowing only which tokens answers use."""
    counts = torch.ones(vocab, dtype=torch.float64)
    for row in train:
        counts += torch.bincount(torch.tensor(row.answer), minlength=vocab)[:vocab].double()
    logp = (counts / counts.sum()).log()
    tokens = torch.tensor([t for row in held for t in row.answer])
    return float(-logp[tokens].mean()) if len(tokens) else 0.0


def best_constant_verdict(gold: list[str]) -> float:
    return max(sum(g == v for g in gold) for v in VERDICTS) / max(len(gold), 1)


def best_constant_format(role, candidates: list[str], n_pure: int, n_hybrid: int) -> float:
    """Adherence of the best single output given to every held-out prompt (from ``candidates``)."""
    best = 0
    for text in candidates:
        best = max(best, role.follows_format(text, True) * n_pure + role.follows_format(text, False) * n_hybrid)
    return best / max(n_pure + n_hybrid, 1)


def scores(model, tokenizer, role, pure: list[Encoded], pure_gold: list[str], hybrid: list[Encoded],
           loss_rows: list[Encoded], max_new_tokens: int, device) -> dict[str, float]:
    """exact_match, heldout_loss, heldout_perplexity, format_adherence of ``model`` as it is."""
    answers = generate(model, tokenizer, pure + hybrid, max_new_tokens, device)
    pure_answers, hybrid_answers = answers[:len(pure)], answers[len(pure):]
    loss = heldout_loss(model, loss_rows, tokenizer.pad_token_id, device)
    follows = [role.follows_format(a, True) for a in pure_answers] + [role.follows_format(a, False) for a in hybrid_answers]
    return {
        "exact_match": sum(a == g for a, g in zip(pure_answers, pure_gold)) / max(len(pure), 1),
        "heldout_loss": loss,
        "heldout_perplexity": math.exp(min(loss, 50.0)),
        "format_adherence": sum(follows) / max(len(follows), 1),
    }
