"""What the translator's verdicts are judged against: fixed retrieval pools, word overlap, the majority role."""

from __future__ import annotations

import pytest
import torch

from voltx_phases.translator_eval import RETRIEVAL_POOL, majority_role, majority_role_accuracy, retrieval_pools, word_overlap_top1, words


def test_retrieval_pools_do_not_depend_on_the_batch_size():
    items = list(range(400))
    pools = retrieval_pools(items, limit=50)
    assert RETRIEVAL_POOL == 64 and [len(p) for p in pools] == [64] * 6 and pools[1][0] == 64  # consecutive, in split order
    assert retrieval_pools(items, limit=2) == pools[:2]
    assert retrieval_pools(items[:12], limit=50) == [items[:12]]  # a smaller validation split is one pool
    assert retrieval_pools([], limit=50) == []


def test_word_overlap_ranks_docstrings_by_shared_words_and_splits_ties():
    assert words("def parseHTTPHeader_line(self, raw2):  # read it") == {"parse", "http", "header", "line", "raw", "read", "it"}
    texts = {1: "def read_config(path): return open(path)", 2: "Read the config file at path.",
             3: "def add(a, b): return a + b", 4: "Add two numbers.",
             5: "def noop(): pass", 6: "Nothing shared here."}
    pool = [(1, [], 2), (3, [], 4), (5, [], 6)]
    # query 1 and 3 find their own docstrings; query 5 shares no word with any: a three-way tie, 1/3
    assert word_overlap_top1([pool], texts.__getitem__) == (1 + 1 + 1 / 3) / 3


def test_majority_role_is_scored_on_the_validation_tokens():
    train = [([0, 0, 0], [15, 15, 2], [0]), ([0, 0], [15, 3], [0])]
    assert majority_role(train) == 15
    roles = torch.tensor([[15, 2, -100], [15, 15, 15]])
    batches = [(None, None, roles, None, None), (None, None, torch.tensor([[3, 15]]), None, None)]
    assert majority_role_accuracy(batches, 15) == pytest.approx((4 / 5 + 1 / 2) / 2)  # per batch, as role accuracy is; padding not counted
