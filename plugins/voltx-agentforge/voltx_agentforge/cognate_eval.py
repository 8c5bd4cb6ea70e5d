"""What a Cognate evaluation measures: held-out accuracy beside its no-model baselines and
ablations, each model's behaviour (halting steps, memory use, speed) and the three models' diversity.

Diversity (the plan's "> 0.3"): each model's behaviour is a point in [0, 1]^3 ---
``halting`` = mean refinement steps per token / the most steps any of the three may take,
``memory`` = mean memory-gate opening per token, ``speed`` = held-out examples per second /
the fastest of the three --- and the diversity is the mean over the three pairs of models of
the mean absolute difference of their points (0: the three behave alike; 1: as far apart as
the box allows). Halting and memory are read on the same held-out batches for every model;
speed is timed on them back to back, so load on the machine shifts all three alike.
"""

from __future__ import annotations

import time
from collections import Counter
from itertools import combinations

import torch

from voltx_agentforge.cognate_data import Example, collate, numbers
from voltx_agentforge.cognate_model import EOS, PAD

BEHAVIOUR = ("halting", "memory", "speed")


@torch.no_grad()
def greedy_answers(model, rows: list[Example], max_new: int, batch: int, device, **switches) -> list[str]:
    """Greedy answers to the prompts of ``rows`` (right padding: causal attention never sees it)."""
    model.eval()
    out: list[str] = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        lens = torch.tensor([r.prompt_len for r in chunk])
        width = int(lens.max()) + max_new
        ids = torch.full((len(chunk), width), PAD, dtype=torch.long)
        for i, r in enumerate(chunk):
            ids[i, :r.prompt_len] = torch.tensor(r.ids[:r.prompt_len])
        done = torch.zeros(len(chunk), dtype=torch.bool)
        answers: list[list[int]] = [[] for _ in chunk]
        ids, rows_idx = ids.to(device), torch.arange(len(chunk))
        for k in range(max_new):
            upto = int((lens + k).max())
            logits = model(ids[:, :upto], **switches)["logits"]
            nxt = logits[rows_idx, (lens + k - 1).to(device)].argmax(-1).cpu()
            for i, tok in enumerate(nxt.tolist()):
                if not done[i]:
                    if tok == EOS or tok >= 256:
                        done[i] = True
                    else:
                        answers[i].append(tok)
            if bool(done.all()):
                break
            ids[rows_idx, (lens + k).to(device)] = nxt.to(device)
        out.extend(bytes(a).decode("utf-8", "replace").strip() for a in answers)
    return out


def accuracy(answers: list[str], gold: list[str]) -> float:
    return sum(a == g for a, g in zip(answers, gold)) / max(1, len(gold))


def majority_answer(train: list[dict], gold: list[str]) -> float:
    """Accuracy of always answering the most common training answer."""
    common = Counter(r["output"] for r in train).most_common(1)[0][0]
    return accuracy([common] * len(gold), gold)


COPY_RULES = {"first": lambda ns: ns[0], "last": lambda ns: ns[-1], "largest": lambda ns: max(ns, key=float)}


def copy_number(train: list[dict], held: list[dict]) -> float:
    """Accuracy of answering a number copied from the question: the rule (first, last, largest)
    that does best on the training records, applied to the held-out ones."""
    def score(rule, records):
        return accuracy([(COPY_RULES[rule](numbers(r["input"])) if numbers(r["input"]) else "") for r in records],
                        [r["output"] for r in records])

    best = max(COPY_RULES, key=lambda rule: score(rule, train))
    return score(best, held)


@torch.no_grad()
def behaviour(model, rows: list[Example], batch: int, batches: int, device) -> dict[str, float]:
    """Mean refinement steps and memory gate per real token, and examples per second, on the
    first ``batches`` batches of ``rows`` (teacher-forced)."""
    model.eval()
    steps = gate = tokens = 0.0
    examples, seconds = 0, 0.0
    for start in range(0, min(len(rows), batch * batches), batch):
        b = collate(rows[start:start + batch], 0.0)
        ids, real = b["ids"].to(device), (b["ids"] != PAD).to(device)
        t0 = time.perf_counter()
        out = model(ids)
        seconds += time.perf_counter() - t0
        steps += float((out["steps"] * real).sum())
        gate += float((out["gate"] * real).sum())
        tokens += float(real.sum())
        examples += ids.shape[0]
    return {"halting_steps": steps / tokens, "memory_use": gate / tokens, "examples_per_sec": examples / max(seconds, 1e-9)}


def points(figures: list[dict[str, float]], max_steps: int) -> list[tuple[float, float, float]]:
    """Each model's behaviour in [0, 1]^3 (see the module docstring)."""
    fastest = max(f["examples_per_sec"] for f in figures)
    return [(f["halting_steps"] / max_steps, f["memory_use"], f["examples_per_sec"] / fastest) for f in figures]


def diversity(figures: list[dict[str, float]], max_steps: int) -> float:
    pts = points(figures, max_steps)
    pairs = list(combinations(pts, 2))
    return sum(sum(abs(a - b) for a, b in zip(p, q)) / len(BEHAVIOUR) for p, q in pairs) / len(pairs)
