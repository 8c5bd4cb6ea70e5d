"""HDC algebra: HRR properties, agreement with torchhd and numpy, edge cases, validation."""

import numpy as np
import pytest
import torch
import torchhd

from voltx.engine.hdc import HDCError, bind, permute, similarity, superpose, unbind
from voltx.errors import VoltxError

D = 256


@pytest.fixture(autouse=True)
def single_thread():
    # Small FFTs gain nothing from intra-op threads on a shared 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def unit(*shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(*shape, D, generator=g, dtype=torch.float64)
    return (v / v.norm(dim=-1, keepdim=True)).to(dtype)


def cos(a, b):
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)


def np_unbind(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The original's unbind, written out with numpy's full complex FFT (float64)."""
    fc, fa = np.fft.fft(c), np.fft.fft(a)
    power = np.abs(fa) ** 2
    safe = np.where(power < 1e-10, 1.0, power)
    return np.real(np.fft.ifft(np.where(power < 1e-10, 0.0, fc * np.conj(fa) / safe)))


# -- algebraic properties -------------------------------------------------------------


def test_unbind_recovers_bound_vector_over_a_batch():
    a, b = unit(512, seed=1), unit(512, seed=2)
    recovered = unbind(bind(a, b), a)
    sims = cos(recovered, b)
    assert sims.shape == (512,)
    assert sims.min() > 0.85  # the original's milestone threshold
    assert sims.median() > 0.999  # exact division: recovery is exact up to float error
    # the bound vector hides both inputs
    bound = bind(a, b)
    assert cos(bound, a).abs().max() < 0.3 and cos(bound, b).abs().max() < 0.3


def test_three_level_chain():
    a, b, c, d = (unit(64, seed=s) for s in (3, 4, 5, 6))
    x = bind(a, bind(b, bind(c, d)))
    got = unbind(unbind(unbind(x, a), b), c)
    assert cos(got, d).min() > 0.7


def test_bind_commutative_and_broadcasts():
    a, b = unit(8, seed=7), unit(8, seed=8)
    assert torch.allclose(bind(a, b), bind(b, a), atol=1e-6)
    key = unit(seed=9)  # [D] against [8, D]
    out = bind(key, b)
    assert out.shape == (8, D)
    assert torch.allclose(out[3], bind(key, b[3]), atol=1e-6)
    assert bind(unit(2, 3, seed=1), unit(3, seed=2)).shape == (2, 3, D)


def test_bind_identity_and_shift():
    # delta at 0 is the identity of circular convolution; delta at k is a roll by k
    a = unit(4, seed=10)
    delta = torch.zeros(D)
    delta[0] = 1.0
    assert torch.allclose(bind(a, delta), a, atol=1e-6)
    delta_k = torch.zeros(D)
    delta_k[5] = 1.0
    assert torch.allclose(bind(a, delta_k), permute(a, 5), atol=1e-6)


def test_unbind_cutoff_zeroes_small_bins():
    # a constant key has energy only in the DC bin: every other bin is below the cutoff, so
    # unbinding keeps only b's mean (plain division would give NaN/inf)
    a = torch.full((D,), 1.0 / D**0.5)
    b = unit(seed=11)
    got = unbind(bind(a, b), a)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, torch.full((D,), float(b.mean())), atol=1e-6)
    # a key whose non-DC bins are tiny but not zero (|A_k|^2 ~ 1e-12): they are cut off, so
    # only the DC bin divides: every component is sum(c) / (D * sum(key))
    g = torch.Generator().manual_seed(12)
    key = a + 1e-7 * torch.randn(D, generator=g)
    c = unit(seed=13)
    want = torch.full((D,), float(c.sum() / (D * key.sum())))
    assert torch.allclose(unbind(c, key), want, atol=1e-5)


def test_unbind_matches_numpy_reference():
    c, a = unit(6, seed=12, dtype=torch.float64), unit(6, seed=13, dtype=torch.float64)
    a[0] = 1.0 / D**0.5 + 1e-8 * a[0]  # one row exercising the cutoff: non-DC |A_k|^2 ~ 1e-14
    want = np.stack([np_unbind(ci, ai) for ci, ai in zip(c.numpy(), a.numpy())])
    assert np.allclose(unbind(c, a).numpy(), want, atol=1e-12)


def test_superpose_retrieves_members():
    for n in (3, 4, 5):
        members = unit(32, n, seed=20 + n)
        outsiders = unit(32, seed=40 + n)
        s = superpose(members)
        assert s.shape == (32, D)
        assert torch.allclose(s.norm(dim=-1), torch.ones(32), atol=1e-5)
        member_cos = cos(s.unsqueeze(-2), members)  # [32, n]
        outsider_cos = cos(s, outsiders).abs()
        assert member_cos.min() > 0.3
        assert outsider_cos.max() < 0.25
        assert (member_cos.min(dim=-1).values > outsider_cos).all()


def test_superpose_errors():
    with pytest.raises(HDCError, match="N = 0"):
        superpose(torch.zeros(2, 0, D))
    a = unit(seed=30)
    with pytest.raises(HDCError, match="zero"):
        superpose(torch.stack([a, -a]))
    with pytest.raises(HDCError, match=r"\[N, D\]|\[\.\.\., N, D\]"):
        superpose(a)


def test_permute_round_trip_and_direction():
    a = unit(3, seed=31)
    assert torch.equal(permute(permute(a, 7), -7), a)
    assert torch.equal(permute(a, D + 3), permute(a, 3))
    x = torch.arange(float(D))
    assert permute(x, 2)[2] == 0.0 and permute(x, 2)[0] == D - 2  # result[(i + k) % D] = a[i]
    assert permute(x, -1)[0] == 1.0
    assert cos(permute(a, 1), permute(a, 2)).abs().max() < 0.3
    assert torch.equal(permute(a, np.int64(3)), permute(a, 3))
    with pytest.raises(HDCError, match="k must be an int"):
        permute(a, 1.5)


def test_similarity_edge_cases():
    a = unit(seed=32)
    e0 = torch.zeros(D)
    e0[0] = 1.0
    e1 = torch.zeros(D)
    e1[1] = 1.0
    assert similarity(a, a) == pytest.approx(1.0, abs=1e-6)
    assert similarity(a, -a) == pytest.approx(-1.0, abs=1e-6)
    assert similarity(e0, e1) == 0.0
    assert similarity(a, torch.zeros(D)) == 0.0 and similarity(torch.zeros(D), a) == 0.0
    assert similarity(e0 * 1e-11, e0) == 0.0  # norm below 1e-10: undefined -> 0
    assert similarity(e0 * 1e-9, e0) == pytest.approx(1.0, abs=1e-6)  # just above: defined
    assert similarity(3.0 * a, a) == pytest.approx(1.0, abs=1e-6)  # scale-free
    batch = torch.stack([a, -a, torch.zeros(D)])
    assert torch.allclose(similarity(batch, a), torch.tensor([1.0, -1.0, 0.0]), atol=1e-6)


# -- agreement with torchhd (HRR bind = real(ifft(fft(a) * fft(b)))) ---------------------


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_bind_equals_torchhd_hrr(dtype, atol):
    a, b = unit(64, seed=50, dtype=dtype), unit(64, seed=51, dtype=dtype)
    ref = torchhd.bind(torchhd.HRRTensor(a), torchhd.HRRTensor(b)).as_subclass(torch.Tensor)
    ours = bind(a, b)
    assert ours.dtype == dtype and ours.shape == ref.shape
    # outputs are O(1/sqrt(D)) ~ 0.06; float32 FFT rounding error is ~1e-8 here
    assert torch.allclose(ours, ref, rtol=0, atol=atol)
    assert not torch.allclose(ours, bind(a, b.roll(1, dims=0)), atol=1e-3)  # the check can fail


def test_unbind_equals_torchhd_exact_inverse_bind():
    # exact_inverse(a) = ifft(1 / fft(a)); binding with it is exact division when no bin is tiny
    c, a = unit(16, seed=52, dtype=torch.float64), unit(16, seed=53, dtype=torch.float64)
    inv = torchhd.HRRTensor(a).exact_inverse()
    ref = torchhd.HRRTensor(c).bind(inv).as_subclass(torch.Tensor)
    assert torch.allclose(unbind(c, a), ref, atol=1e-9)


# -- validation --------------------------------------------------------------------------


def test_bind_rejects_non_finite_and_zero_rows():
    a, b = unit(5, seed=60), unit(5, seed=61)
    bad = a.clone()
    bad[3, 17] = float("nan")
    with pytest.raises(HDCError, match=r"bind: a at index \[3\] contains NaN or inf"):
        bind(bad, b)
    bad[3, 17] = float("inf")
    with pytest.raises(HDCError, match=r"b at index \[3\] contains NaN or inf"):
        bind(a, bad)
    zero = a.clone()
    zero[1] = 0.0
    with pytest.raises(HDCError, match=r"b at index \[1\] is a zero or near-zero vector"):
        bind(a, zero)
    with pytest.raises(HDCError, match=r"unbind: a at index \[1\] is a zero"):
        unbind(a, zero)
    with pytest.raises(HDCError, match="unbind: c at index"):
        unbind(zero, a)
    with pytest.raises(HDCError, match="overflows"):
        bind(a * 1e30, b)
    err = pytest.raises(HDCError, bind, bad, b).value
    assert isinstance(err, VoltxError) and err.exit_code == 65


def test_shape_and_type_mismatches():
    with pytest.raises(HDCError, match=r"last dims differ: a \[4, 256\] vs b \[4, 128\]"):
        bind(unit(4), torch.randn(4, 128))
    with pytest.raises(HDCError, match="last dims differ"):
        similarity(unit(4), torch.randn(4, 128))
    with pytest.raises(HDCError, match="do not broadcast"):
        bind(unit(4), unit(3))
    with pytest.raises(HDCError, match="floating-point"):
        bind(torch.ones(D, dtype=torch.long), unit())
    with pytest.raises(HDCError, match="must be a tensor"):
        unbind([1.0] * D, unit())
    with pytest.raises(HDCError, match="similarity: a at index"):
        similarity(torch.tensor([[float("nan")] * D]), unit(1))


def test_check_false_skips_validation():
    a = unit(2, seed=62)
    zero = torch.zeros(2, D)
    assert torch.equal(bind(a, zero, check=False), torch.zeros(2, D))
    assert torch.equal(unbind(a, zero, check=False), torch.zeros(2, D))  # every bin cut off
    assert torch.equal(superpose(torch.zeros(2, 3, D), check=False), torch.zeros(2, D))


def test_low_precision_and_gradients():
    a, b = unit(3, seed=63), unit(3, seed=64)
    half = bind(a.bfloat16(), b.bfloat16())
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), bind(a, b), atol=2e-2)
    a.requires_grad_(True)
    key = torch.full((D,), 1.0 / D**0.5, requires_grad=True)  # cutoff bins must not poison grads
    (unbind(bind(a, b), a).sum() + unbind(b, key).sum()).backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(key.grad).all()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_like_on_cpu():
    a, b = unit(64, seed=70), unit(64, seed=71)
    dev = torch.device("cuda")
    ga, gb = a.to(dev), b.to(dev)
    assert torch.allclose(bind(ga, gb).cpu(), bind(a, b), atol=1e-6)
    assert torch.allclose(unbind(bind(ga, gb), ga).cpu(), unbind(bind(a, b), a), atol=1e-5)
    assert torch.allclose(similarity(ga, gb).cpu(), similarity(a, b), atol=1e-6)
    assert torch.allclose(superpose(torch.stack([ga, gb], dim=-2)).cpu(), superpose(torch.stack([a, b], dim=-2)),
                          atol=1e-6)
    ga[5] = 0.0
    with pytest.raises(HDCError, match=r"a at index \[5\] is a zero"):
        bind(ga, gb)
