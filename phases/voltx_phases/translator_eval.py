"""What the translator's encoder verdicts are judged against (imported only when the phase runs).

* Retrieval is scored in fixed pools: each validation query (code) is ranked among the
  docstrings of its pool of :data:`RETRIEVAL_POOL` validation pairs (consecutive pairs of the
  seeded validation split), so chance is 1/64 whatever ``encoder.batch_size`` is; the lift
  (top-1 x pool size) compares across batch sizes and runs.
* The no-model baseline of retrieval is word overlap: the Jaccard similarity of the words of
  the code (identifiers split at ``_`` and camelCase, comments included) and of each docstring
  in the same pool, both as the encoder sees them (its truncated tokens, decoded).
* The ablation is the encoder at its initialisation (the same seed), on the same pools.
* Role accuracy's baseline is the heuristic labeller's majority label (the most frequent
  label of the training tokens) scored on the same validation tokens.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter

import torch

from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.tokenizer import PAD_ID, pad_rows

RETRIEVAL_POOL = 64
"""Candidates each validation query is ranked among (fewer only when validation is smaller)."""
IGNORE = -100
_WORD = re.compile(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_SKIP = frozenset(keyword.kwlist) | {"self", "cls"}


def retrieval_pools(items: list, limit: int) -> list[list]:
    """At most ``limit`` pools of :data:`RETRIEVAL_POOL` consecutive validation items (one pool
    of all of them when there are fewer)."""
    size = min(RETRIEVAL_POOL, len(items))
    return [items[i * size : (i + 1) * size] for i in range(min(limit, len(items) // size))] if size else []


def encoder_top1(encoder: CnnFrameEncoder, pools: list[list], device) -> float:
    """Share of queries whose own docstring has the highest summary cosine in their pool."""
    hits = total = 0
    for pool in pools:
        code, code_mask = pad_rows([c for c, _, _ in pool], PAD_ID)
        doc, doc_mask = pad_rows([d for _, _, d in pool], PAD_ID)
        scores = encoder(code.to(device), code_mask.to(device)).summary @ encoder(doc.to(device), doc_mask.to(device)).summary.T
        hits += int((scores.argmax(1).cpu() == torch.arange(len(pool))).sum())
        total += len(pool)
    return hits / max(1, total)


def words(text: str) -> frozenset[str]:
    """Lower-cased words of code or prose: ``parseHTTPHeader_line`` -> parse, http, header, line."""
    return frozenset(w.lower() for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in _SKIP)


def word_overlap_top1(pools: list[list], decode) -> float:
    """Expected top-1 of ranking each pool's docstrings by Jaccard overlap with the query's code
    words (ties broken at random: a query tied with k docstrings at the top scores 1/k)."""
    score = total = 0.0
    for pool in pools:
        codes = [words(decode(c)) for c, _, _ in pool]
        docs = [words(decode(d)) for _, _, d in pool]
        for i, code in enumerate(codes):
            sims = [len(code & doc) / len(code | doc) if code | doc else 0.0 for doc in docs]
            top = max(sims)
            if sims[i] == top:
                score += 1.0 / sims.count(top)
            total += 1
    return score / max(1.0, total)


def majority_role(items: list) -> int:
    """The training tokens' most frequent role label."""
    counts = Counter(label for _, roles, _ in items for label in roles)
    return counts.most_common(1)[0][0] if counts else 0


def majority_role_accuracy(batches: list[tuple[torch.Tensor, ...]], label: int) -> float:
    """Role accuracy of predicting ``label`` for every code token, averaged over the validation
    batches as the encoder's role accuracy is."""
    shares = []
    for _, _, roles, _, _ in batches:
        real = roles.ne(IGNORE)
        shares.append(float((roles.eq(label) & real).sum()) / max(1, int(real.sum())))
    return sum(shares) / max(1, len(shares))
