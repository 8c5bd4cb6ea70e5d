"""Hyperdimensional-computing (HRR) algebra on real vectors, batched and device-agnostic.

Every function works on the last dimension and broadcasts over any leading dims, on
whatever device its inputs are on, and is differentiable. The operations are the
original Volt X ones (volt-bus ``ops.rs``/``fft.rs``):

* ``bind(a, b)``: circular convolution, ``irfft(rfft(a) * rfft(b), n=D)``; not normalised.
* ``unbind(c, a)``: *exact* frequency-domain division, per bin ``0`` where
  ``|A|^2 < 1e-10`` else ``C * conj(A) / |A|^2``; so ``unbind(bind(a, b), a) == b`` up to
  float error whenever no bin of ``a`` is below the cutoff.
* ``superpose(vs)``: sum over dim -2, then L2-normalise.
* ``permute(a, k)``: ``roll`` by ``k`` along the last dim (``result[(i + k) % D] = a[i]``).
* ``similarity(a, b)``: cosine, 0 where either norm is below 1e-10.

Validation (``check=True``, the default) raises :class:`HDCError` for mismatched last
dims, non-finite values, and zero vectors (squared norm < 1e-10) where an operation
needs a norm (both inputs of bind/unbind, the sum in superpose). It costs one norm
reduction and one min/max per input and a single host sync; rows are located only after
a failure. Pass ``check=False`` in hot loops whose inputs are known good. The FFT runs
in float32 for half/bfloat16 inputs (result cast back).
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor

from voltx.errors import EXIT_DATA, VoltxError

SQ_NORM_EPS = 1e-10  # bind/unbind/superpose: squared L2 norm below this is a zero vector
BIN_EPS = 1e-10  # unbind: frequency bins with |A|^2 below this are zeroed, not divided
SIM_NORM_EPS = 1e-10  # similarity: an L2 norm below this gives similarity 0

_LOW_PRECISION = (torch.float16, torch.bfloat16)


class HDCError(VoltxError):
    """Bad input to an HDC operation: non-finite values, a zero vector, or a shape mismatch."""

    exit_code = EXIT_DATA


def _as_tensor(op: str, name: str, x) -> Tensor:
    if not isinstance(x, Tensor):
        raise HDCError(f"{op}: {name} must be a tensor, got {type(x).__name__}")
    if x.dim() == 0 or not x.is_floating_point():
        raise HDCError(f"{op}: {name} must be a floating-point tensor [..., D], got {x.dtype} {list(x.shape)}")
    return x


def _pair(op: str, a, b, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    a, b = _as_tensor(op, names[0], a), _as_tensor(op, names[1], b)
    if a.shape[-1] != b.shape[-1]:
        raise HDCError(
            f"{op}: last dims differ: {names[0]} {list(a.shape)} vs {names[1]} {list(b.shape)} (same D needed)"
        )
    # (torch.broadcast_shapes costs ~60 µs, as much as a small bind: compare by hand)
    if a.shape[:-1] != b.shape[:-1] and any(x != y and 1 not in (x, y) for x, y in zip(a.shape[::-1], b.shape[::-1])):
        raise HDCError(
            f"{op}: leading dims do not broadcast: {names[0]} {list(a.shape)} vs {names[1]} {list(b.shape)}"
        )
    return a, b


def _row_norms(x: Tensor) -> Tensor:
    # NaN/inf anywhere in a row makes its norm NaN/inf; so does overflow (|x| > ~1e19 in float32).
    return torch.linalg.vector_norm(x, dim=-1, dtype=torch.float32 if x.dtype in _LOW_PRECISION else None)


def _validate(op: str, named: dict[str, Tensor], need_norm: bool) -> None:
    """Raise HDCError unless every row is finite (and, if ``need_norm``, not near zero).

    Happy path: one norm reduction and one min/max per input, then a host sync; rows are
    only located (slowly) once something is known to be wrong.
    """
    extremes = [m for x in named.values() for m in torch.aminmax(_row_norms(x))]
    if extremes[0].device.type == "cpu":
        stats = [m.item() for m in extremes]  # (torch.stack of 0-d tensors costs more than this on CPU)
    else:
        stats = torch.stack(extremes).tolist()  # one device-to-host copy
    for i, (name, x) in enumerate(named.items()):
        lo, hi = stats[2 * i], stats[2 * i + 1]  # NaN fails both comparisons below
        if hi < float("inf") and (not need_norm or lo * lo >= SQ_NORM_EPS):
            continue
        sq = _row_norms(x).double().square()
        bad = ~torch.isfinite(sq) | (sq < SQ_NORM_EPS) if need_norm else ~torch.isfinite(sq)
        row = tuple(int(j) for j in bad.nonzero()[0]) if bad.dim() else ()
        vec = x[row] if row else x
        if not bool(torch.isfinite(vec).all()):
            why = "contains NaN or inf"
        elif not torch.isfinite(sq[row]):
            why = "overflows float range when squared (values too large)"
        else:
            why = f"is a zero or near-zero vector (squared L2 norm < {SQ_NORM_EPS})"
        hint = "pass finite, non-zero vectors" if need_norm else "pass finite vectors"
        where = f" at index {list(row)}" if row else ""
        raise HDCError(f"{op}: {name}{where} {why}; {hint}")


def _for_fft(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, torch.dtype | None]:
    """``a``, ``b`` in one FFT-able dtype, and the dtype to cast the result back to (or None)."""
    if a.dtype == b.dtype and a.dtype not in _LOW_PRECISION:
        return a, b, None  # the common case costs nothing
    dtype = torch.promote_types(a.dtype, b.dtype)
    work = torch.float32 if dtype in _LOW_PRECISION else dtype
    return a.to(work), b.to(work), None if work == dtype else dtype


def bind(a: Tensor, b: Tensor, *, check: bool = True) -> Tensor:
    """Circular convolution of ``a`` and ``b`` (``[..., D]``, broadcast): the HRR binding."""
    a, b = _pair("bind", a, b, ("a", "b"))
    if check:
        _validate("bind", {"a": a, "b": b}, need_norm=True)
    a, b, back = _for_fft(a, b)
    out = torch.fft.irfft(torch.fft.rfft(a, dim=-1) * torch.fft.rfft(b, dim=-1), n=a.shape[-1], dim=-1)
    return out if back is None else out.to(back)


def unbind(c: Tensor, a: Tensor, *, check: bool = True) -> Tensor:
    """Recover ``b`` from ``c = bind(a, b)``: exact division by ``rfft(a)`` with the 1e-10 bin cutoff."""
    c, a = _pair("unbind", c, a, ("c", "a"))
    if check:
        _validate("unbind", {"c": c, "a": a}, need_norm=True)
    c, a, back = _for_fft(c, a)
    fa = torch.fft.rfft(a, dim=-1)
    power = fa.real.square() + fa.imag.square()  # |A|^2 per bin
    # keep / clamp rather than where(p < eps, 0, 1 / p): cut-off bins must not put inf into
    # autograd; and real-valued scaling is ~2x faster than dividing the complex tensor
    scale = (power >= BIN_EPS).to(power.dtype) / power.clamp_min(BIN_EPS)
    out = torch.fft.irfft(torch.fft.rfft(c, dim=-1) * fa.conj() * scale, n=a.shape[-1], dim=-1)
    return out if back is None else out.to(back)


def superpose(vectors: Tensor, *, check: bool = True) -> Tensor:
    """Sum ``[..., N, D]`` over N and L2-normalise to ``[..., D]``.

    HDCError if N is 0, or (with ``check``) if a sum is non-finite or has squared norm < 1e-10.
    """
    vectors = _as_tensor("superpose", "vectors", vectors)
    if vectors.dim() < 2:
        raise HDCError(f"superpose: vectors must be [..., N, D], got {list(vectors.shape)}")
    if vectors.shape[-2] == 0:
        raise HDCError(f"superpose: nothing to superpose (N = 0 in {list(vectors.shape)})")
    total = vectors.sum(dim=-2)
    if check:
        _validate("superpose", {"the sum": total}, need_norm=True)
    norm = torch.linalg.vector_norm(total, dim=-1, keepdim=True)
    return total / norm.clamp_min(SQ_NORM_EPS**0.5)


def permute(a: Tensor, k: int) -> Tensor:
    """Cyclic shift right by ``k`` along the last dim (negative ``k`` shifts left)."""
    a = _as_tensor("permute", "a", a)
    try:
        k = operator.index(k)  # ints, numpy ints, 0-d integer tensors; not floats
    except TypeError:
        raise HDCError(f"permute: k must be an int, got {type(k).__name__}") from None
    return torch.roll(a, shifts=k, dims=-1)


def similarity(a: Tensor, b: Tensor, *, check: bool = True) -> Tensor:
    """Cosine similarity over the last dim (broadcast), 0 where either L2 norm is < 1e-10."""
    a, b = _pair("similarity", a, b, ("a", "b"))
    if check:
        _validate("similarity", {"a": a, "b": b}, need_norm=False)
    dot = (a * b).sum(dim=-1)
    na = torch.linalg.vector_norm(a, dim=-1)
    nb = torch.linalg.vector_norm(b, dim=-1)
    defined = (na >= SIM_NORM_EPS) & (nb >= SIM_NORM_EPS)
    cos = dot / (na * nb).clamp_min(SIM_NORM_EPS**2)
    return torch.where(defined, cos.clamp(-1.0, 1.0), torch.zeros_like(cos))
