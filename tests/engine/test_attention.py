"""SlotAttention: hand-checked scores, masking, biases and ghost blending."""

import math

import pytest
import torch

from engine_support import one_thread  # noqa: F401  (a fixture: one intra-op thread for tiny tensors)
from voltx.engine.attention import SlotAttention, code_bias, language_bias


def _attn(dim=8, seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    a = SlotAttention(dim).to(dtype)
    for layer in (a.wq, a.wk, a.wv):  # non-zero biases so the test sees them used
        layer.bias.data.normal_(0, 0.1)
    return a


def test_defaults_match_the_original():
    a = SlotAttention()
    assert a.scale == 1 / 16
    assert sum(p.numel() for p in a.parameters()) == 3 * (256 * 256 + 256)  # no output projection
    limit = math.sqrt(6 / 512)
    assert all(layer.weight.abs().max() <= limit and not layer.bias.any() for layer in (a.wq, a.wk, a.wv))


def test_three_slot_example_matches_hand_computed_softmax():
    a = _attn(dim=4)
    x = torch.randn(1, 3, 4, dtype=torch.float64)
    bias = torch.tensor([[0.0, 1.0, -0.5], [0.3, 0.0, 0.0], [2.0, 0.0, 0.1]], dtype=torch.float64)
    W = {n: (getattr(a, n).weight.tolist(), getattr(a, n).bias.tolist()) for n in ("wq", "wk", "wv")}

    def lin(name, v):
        w, b = W[name]
        return [sum(w[o][i] * v[i] for i in range(4)) + b[o] for o in range(4)]

    rows = x[0].tolist()
    q, k, v = ([lin(n, r) for r in rows] for n in ("wq", "wk", "wv"))
    expected = []
    for i in range(3):
        scores = [sum(q[i][d] * k[j][d] for d in range(4)) / 2 + bias[i][j].item() for j in range(3)]
        top = max(scores)
        e = [math.exp(s - top) for s in scores]
        w = [v_ / sum(e) for v_ in e]
        expected.append([sum(w[j] * v[j][d] for j in range(3)) for d in range(4)])
    got = a(x, torch.ones(1, 3, dtype=torch.bool), bias)
    assert torch.allclose(got[0], torch.tensor(expected, dtype=torch.float64), atol=1e-12)
    assert a.scale == 0.5  # 1/sqrt(dim)


def test_bias_is_added_to_scores():
    a = _attn()
    a.wq.weight.data.zero_()
    a.wq.bias.data.zero_()  # q = 0: the scores are exactly the bias
    x = torch.randn(2, 16, 8, dtype=torch.float64)
    bias = code_bias().double()
    active = torch.ones(2, 16, dtype=torch.bool)
    assert torch.allclose(a.weights(x, active, bias), bias.softmax(-1).expand(2, 16, 16))
    assert torch.allclose(a.weights(x, active), torch.full((2, 16, 16), 1 / 16, dtype=torch.float64))


def test_inactive_slots_are_neither_queries_nor_keys():
    a = _attn()
    x = torch.randn(2, 16, 8, dtype=torch.float64)
    active = torch.rand(2, 16) > 0.4
    active[1] = False  # an empty frame
    msg = a(x, active, code_bias().double())
    w = a.weights(x, active, code_bias().double())
    assert torch.count_nonzero(msg[~active]) == 0
    assert torch.count_nonzero(w.transpose(1, 2)[~active]) == 0  # nobody attends to them
    assert torch.allclose(w[active].sum(-1), torch.ones(int(active.sum()), dtype=torch.float64))
    # Their contents are irrelevant to everybody else.
    x2 = torch.where(active[..., None], x, torch.randn_like(x) * 50)
    assert torch.equal(a(x2, active, code_bias().double()), msg)
    # Equivalent to attention over the active slots alone.
    idx = active[0].nonzero().flatten()
    alone = a(x[:1, idx], None, code_bias().double()[idx][:, idx])
    assert torch.allclose(msg[0, idx], alone[0], atol=1e-12)


def test_masked_rows_keep_gradients_finite():
    a = _attn(dtype=torch.float32)
    x = torch.randn(2, 16, 8, requires_grad=True)
    active = torch.zeros(2, 16, dtype=torch.bool)
    active[0, :3] = True
    a(x, active).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in a.parameters())
    assert torch.isfinite(x.grad).all() and torch.count_nonzero(x.grad[1]) == 0


def test_code_bias_is_the_originals():
    b = code_bias()
    expected = torch.zeros(16, 16)
    for (i, j), value in {(0, 2): 2.0, (0, 3): 2.0, (1, 2): 2.0, (0, 1): 1.5, (1, 3): 1.5, (1, 4): 1.5,
                          (1, 5): 1.0, (1, 6): 1.0, (1, 7): 1.0, (1, 8): 1.0, (4, 6): 1.0, (4, 7): 1.0,
                          (4, 8): 1.0, (6, 7): 0.5, (6, 8): 0.5, (7, 8): 0.5}.items():
        expected[i, j] = expected[j, i] = value
    expected[range(9), range(9)] = 0.5
    assert torch.equal(b, expected)
    assert b.sum().item() == pytest.approx(2 * (3 * 2.0 + 3 * 1.5 + 7 * 1.0 + 3 * 0.5) + 9 * 0.5)


def test_language_bias_prior():
    b = language_bias()
    assert torch.equal(b, b.T) and b.shape == (16, 16)
    agent, pred, patient, loc, time, manner = range(6)
    assert b[agent, pred] == 2.0 > b[pred, patient] > b[agent, patient] == 1.0
    assert b[pred, loc] == b[pred, time] == b[pred, manner] == 0.5
    assert not b.diagonal().any() and not b[9:].any()


def test_ghost_alpha_zero_equals_no_ghosts_and_alpha_is_clamped():
    a = _attn()
    x = torch.randn(2, 16, 8, dtype=torch.float64)
    ghosts = torch.randn(2, 5, 8, dtype=torch.float64)
    active = torch.rand(2, 16) > 0.3
    plain = a(x, active)
    assert torch.equal(a(x, active, ghosts=ghosts, ghost_alpha=0.0), plain)
    assert not torch.allclose(a(x, active, ghosts=ghosts, ghost_alpha=0.1), plain)
    assert torch.equal(a(x, active, ghosts=ghosts, ghost_alpha=7.0), a(x, active, ghosts=ghosts, ghost_alpha=1.0))
    assert torch.equal(a(x, active, ghosts=ghosts, ghost_alpha=-3.0), plain)


def test_ghost_message_is_a_separate_unbiased_softmax():
    a = _attn()
    x = torch.randn(1, 16, 8, dtype=torch.float64)
    ghosts = torch.randn(1, 4, 8, dtype=torch.float64)
    ghost_mask = torch.tensor([[True, False, True, True]])
    q, gk, gv = a.wq(x), a.wk(ghosts[:, [0, 2, 3]]), a.wv(ghosts[:, [0, 2, 3]])
    ghost_msg = (q @ gk.transpose(1, 2) * a.scale).softmax(-1) @ gv
    alpha = 0.3
    expected = (1 - alpha) * a(x, None, code_bias().double()) + alpha * ghost_msg  # bias: slots only
    got = a(x, None, code_bias().double(), ghosts=ghosts, ghost_mask=ghost_mask, ghost_alpha=alpha)
    assert torch.allclose(got, expected, atol=1e-12)
    # A frame with no valid ghost keeps its slot message as is.
    none = a(x, None, ghosts=ghosts, ghost_mask=torch.zeros(1, 4, dtype=torch.bool), ghost_alpha=alpha)
    assert torch.equal(none, a(x, None))
