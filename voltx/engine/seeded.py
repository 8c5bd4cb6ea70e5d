"""Deterministic "random" unit vectors, bit-compatible with the original Volt X.

One recipe (volt-hard ``math_engine.rs``, volt-bus tests, the stub translator) makes the
stub word vectors, the strands' capability vectors and the safety axiom vectors. For
``i`` in ``0..dim``::

    h = seed * 0xd2b74407b1ce6e93 + i          (wrapping u64)
    h = fmix64(h)                              (murmur3 finaliser)
    v[i] = f32((h / (2**64 - 1)) * 2 - 1)      (computed in f64)

then ``v /= ||v||`` in f32 with a sequential f32 sum of squares, as the Rust code does.
Word seeds are FNV-1a-64 of the UTF-8 bytes; the fixed seeds are in :data:`SEEDS`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

MASK64 = (1 << 64) - 1
SEED_MULTIPLIER = 0xD2B74407B1CE6E93
FNV_OFFSET_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

SEEDS: dict[str, int] = {
    "math_engine": 0x4D415448454E4731,  # "MATHENG1"
    "hdc_algebra": 0x484443414C474231,  # "HDCALGB1"
    "code_runner": 0x434F444552554E31,  # "CODERUN1"
    "K1": 0x4B314841524D5F5F,
    "K2": 0x4B32444543455054,
    "K3": 0x4B33505249564143,
    "K4": 0x4B344155544F4E4F,
    "K5": 0x4B35494E54454752,
}


def fnv1a64(text: str) -> int:
    """FNV-1a 64-bit hash of the UTF-8 bytes of ``text`` (the stub word-vector seed)."""
    h = FNV_OFFSET_BASIS
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


def _fmix64(h: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser on a uint64 array (numpy array arithmetic wraps mod 2**64)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@lru_cache(maxsize=4096)
def _seeded(seed: int, dim: int) -> Tensor:
    base = (seed * SEED_MULTIPLIER) & MASK64
    h = _fmix64(np.arange(dim, dtype=np.uint64) + np.uint64(base))
    v = ((h.astype(np.float64) / float(MASK64)) * 2.0 - 1.0).astype(np.float32)
    # Rust: v.iter().map(|x| x * x).sum::<f32>().sqrt(), a left-to-right f32 sum; cumsum is sequential.
    norm = np.sqrt(np.cumsum(v * v, dtype=np.float32)[-1])
    if norm > 1e-10:
        v = v / norm
    return torch.from_numpy(v)


def seeded_unit_vector(seed: int, dim: int = 256) -> Tensor:
    """The original's deterministic unit vector for ``seed`` (a u64): float32 ``[dim]``.

    Cached; each call returns a fresh copy, so callers may modify it.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MASK64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    return _seeded(seed, dim).clone()
