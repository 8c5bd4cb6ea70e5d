"""The LVM's data: .npz read without pickle and checked, windows inside articles, the ordered split."""

from __future__ import annotations

import numpy as np
import pytest

from voltx.errors import DataError, MissingInputError
from voltx_lvm.lvm_data import article_windows, ordered_split, read_npz
from lvm_support import isolated  # noqa: F401 (autouse fixture)


def test_windows_never_cross_an_article_and_keep_order():
    ids = np.array([7, 7, 7, 7, 3, 3, 3, 3, 3, 3, 9, 9])  # 4, 6 and 2 vectors
    w = article_windows(ids, 3)
    assert w.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [5, 6, 7, 8], [6, 7, 8, 9]]
    assert all(len(set(ids[row])) == 1 for row in w)


def test_ordered_split_is_the_handoffs_last_20_percent():
    split = ordered_split(42108, 0.2, 0.0, "x")
    assert (len(split.fit), len(split.valid)) == (33686, 8422)  # int(0.8 * n), as the handoff's script
    assert split.fit.stop == split.valid.start == 33686  # contiguous, nothing shuffled across the cut
    with_dev = ordered_split(100, 0.2, 0.1, "x")
    assert (with_dev.fit, with_dev.dev, with_dev.valid) == (range(0, 72), range(72, 80), range(80, 100))


def test_both_layouts_give_the_same_windows(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(12, 4)).astype(np.float32)
    ids = np.repeat([0, 1], 6)
    np.savez(tmp_path / "flat.npz", vectors=vectors, batch_ids=ids.astype(str))  # the handoff's name, string ids
    flat = read_npz(tmp_path / "flat.npz", 2)
    ctx, tgt = flat.vectors[flat.windows[:, :-1]], flat.vectors[flat.windows[:, -1]]
    np.savez(tmp_path / "win.npz", context_sequences=ctx, target_vectors=tgt)
    win = read_npz(tmp_path / "win.npz", 2)
    assert len(flat.windows) == len(win.windows) == 8
    assert np.array_equal(win.vectors[win.windows], flat.vectors[flat.windows])


def save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, needles", [
    ({"vectors": np.array([[1.0, 2.0]], dtype=object), "article_ids": np.zeros(1, dtype=np.int64)},
     ["'vectors' holds Python objects", "np.savez(", "numeric arrays only"]),
    ({"context_sequences": np.zeros((4, 5)), "target_vectors": np.zeros((4, 5))},
     ["'context_sequences' has shape [4, 5]", "[N, k, d]"]),
    ({"context_sequences": np.zeros((4, 5, 8)), "target_vectors": np.zeros((4, 6))},
     ["d = 8", "d = 6"]),
    ({"context_sequences": np.zeros((4, 5, 8)), "target_vectors": np.zeros((3, 8))},
     ["4 windows", "has 3"]),
    ({"vectors": np.array([[0.0, 1.0], [np.nan, 1.0]]), "article_ids": np.zeros(2, dtype=np.int64)},
     ["'vectors' has NaN or infinite values in 1 row(s), first at index 1"]),
    ({"vectors": np.zeros((5, 3))}, ["no article ids", "'article_ids'"]),
    ({"vectors": np.zeros((5, 3)), "article_ids": np.zeros(4, dtype=np.int64)}, ["4 ids", "5 rows"]),
    ({"context_sequences": np.zeros((4, 3, 8)), "target_vectors": np.zeros((4, 8))}, ["lvm.context = 5", "context=3"]),
    ({"texts": np.array(["a", "b"])}, ["expected 'context_sequences' + 'target_vectors'"]),
], ids=["pickled", "ndim", "d-mismatch", "n-mismatch", "nan", "no-ids", "ids-count", "k-mismatch", "no-keys"])
def test_bad_npz_is_a_data_error_naming_file_and_key(tmp_path, arrays, needles):
    path = save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError) as err:
        read_npz(path, 5)
    assert str(path) in str(err.value)
    for needle in needles:
        assert needle in str(err.value)


def test_missing_file_and_empty_split(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        read_npz(tmp_path / "nope.npz", 5)
    with pytest.raises(DataError, match="leave the validation part empty"):
        ordered_split(10, 0.0, 0.0, "short.npz")
    with pytest.raises(DataError, match="short.npz: 1 windows leave the training part empty"):
        ordered_split(1, 0.2, 0.0, "short.npz")


def test_the_ridge_baseline_shrinks_towards_the_context_mean():
    """Strong regularisation gives the context-mean baseline back (not zero), so the linear bar is
    never below the context mean on dev; a linear dynamic is still fitted when dev asks for it."""
    import torch

    from voltx_lvm.lvm_eval import ridge_baseline, ridge_predict

    rng = np.random.default_rng(0)
    rows = [rng.normal(size=6) for _ in range(4)]
    for _ in range(396):  # next = the mean of the 4 before, plus noise: nothing linear beyond the mean
        rows.append(np.mean(rows[-4:], axis=0) + 0.3 * rng.normal(size=6))
    drifting = torch.from_numpy(np.asarray(rows))
    windows = torch.arange(396)[:, None] + torch.arange(5)
    w, alpha = ridge_baseline(drifting, windows[:300], windows[300:])
    context = drifting[windows[300:, :-1]]
    assert alpha >= 100.0  # dev prefers the strongest shrinkage, which is the context mean
    assert torch.allclose(ridge_predict(w, context), context.mean(dim=1), atol=0.05)
    q = torch.from_numpy(np.linalg.qr(rng.normal(size=(6, 6)))[0])  # next = a fixed rotation of the last
    turning = torch.stack([torch.linalg.matrix_power(q, t) @ torch.ones(6, dtype=torch.float64) for t in range(400)])
    w, alpha = ridge_baseline(turning, windows[:300], windows[300:])
    assert alpha < 100.0
    assert torch.allclose(ridge_predict(w, turning[windows[300:, :-1]]), turning[windows[300:, -1]], atol=0.05)
