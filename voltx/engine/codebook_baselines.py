"""What a codebook's quantization error is judged against: no-k-means references on the same vectors.

A low quantization error means little on its own: embeddings bunched around one direction
(mean pairwise cosine near 1) are quantised just as well by a single entry. So beside the
error of the learned codebook a phase reports:

* ``quantization_error_k1``: the error of a single-entry codebook, the normalised mean of the
  vectors k-means was fitted on (the strongest trivial baseline: it needs no clustering);
* ``random_error``: the error of ``k`` random unit entries (the ablation: clustering off);
* the embedding spread: ``mean_pairwise_cosine`` of the evaluated vectors and their
  ``mean_cosine_to_centroid`` (1 - the K = 1 error), which say how bunched they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from voltx.engine.codebook import Codebook

RANDOM_QUERIES = 10_000
"""The random codebook is scored on at most this many of the evaluated vectors (a flat scan
of up to 65,536 entries per query)."""


def reference_errors(fitted: Tensor, evaluated: Tensor, k: int, seed: int) -> dict[str, float]:
    """K = 1 and random-codebook errors and the spread of ``evaluated`` (rows ``[N, 256]``);
    ``fitted`` are the vectors the codebook was fitted on (the K = 1 entry is their mean)."""
    mean = fitted.double().mean(0)
    if float(mean.norm()) < 1e-6:  # vectors spread evenly around the sphere: any direction is as good
        mean = fitted[0].double()
    k1 = Codebook(mean.float().unsqueeze(0), index="flat", source="K = 1 baseline")
    to_centroid = k1.cosines(evaluated)
    gen = torch.Generator().manual_seed(seed)
    random_book = Codebook(torch.randn(k, evaluated.shape[1], generator=gen), index="flat", source="random codebook")
    return {
        "quantization_error_k1": float((1.0 - to_centroid).mean()),
        "random_error": float((1.0 - random_book.cosines(evaluated[:RANDOM_QUERIES])).mean()),
        "mean_pairwise_cosine": mean_pairwise_cosine(evaluated),
        "mean_cosine_to_centroid": float(to_centroid.mean()),
    }


def mean_pairwise_cosine(x: Tensor) -> float:
    """Mean cosine over all pairs of distinct rows, exactly, in O(N): for unit rows u_i,
    sum over i != j of u_i . u_j = |sum u_i|^2 - N."""
    u = F.normalize(x.double(), dim=-1)
    n = u.shape[0]
    if n < 2:
        return float("nan")
    total = u.sum(0)
    return float((total @ total - (u.norm(dim=-1) ** 2).sum()) / (n * (n - 1)))
