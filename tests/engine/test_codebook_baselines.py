"""The codebook's no-k-means references: a single entry (the mean), random entries, the spread."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from voltx.engine.codebook_baselines import mean_pairwise_cosine, reference_errors


def test_bunched_vectors_are_quantised_by_their_mean_alone():
    """The issue's loophole: vectors around one direction score a low error with one entry."""
    gen = torch.Generator().manual_seed(0)
    direction = F.normalize(torch.randn(256, generator=gen), dim=0)
    x = F.normalize(direction + 0.03 * torch.randn(600, 256, generator=gen), dim=1)
    ref = reference_errors(x[:500], x[500:], k=64, seed=1)
    assert ref["quantization_error_k1"] < 0.15 and ref["random_error"] > 0.7  # the plan's bar passed by no clustering
    assert ref["mean_cosine_to_centroid"] == pytest.approx(1 - ref["quantization_error_k1"])
    assert ref["mean_pairwise_cosine"] > 0.7
    spread = reference_errors(x[:500], torch.randn(100, 256, generator=gen), k=64, seed=1)
    assert abs(spread["mean_pairwise_cosine"]) < 0.05 and spread["quantization_error_k1"] > 0.8


def test_mean_pairwise_cosine_equals_the_pairwise_mean():
    x = torch.randn(40, 256, generator=torch.Generator().manual_seed(2)) + 0.3
    u = F.normalize(x, dim=1)
    gram = u @ u.T
    brute = float((gram.sum() - gram.diagonal().sum()) / (40 * 39))
    assert mean_pairwise_cosine(x) == pytest.approx(brute, abs=1e-6)
