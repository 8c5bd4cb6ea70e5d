"""The HDC codebook: up to 65,536 unit vectors with a nearest-neighbour index, and the
spherical mini-batch k-means that initialises it.

Search is cosine similarity: entries are L2-normalised when the codebook is built, so an
inner-product index returns the entry of highest cosine for any (non-zero) query. Like the
original (volt-x-original.md section 2) large codebooks use HNSW with M=24,
efConstruction=200, efSearch=32 -- here faiss' ``IndexHNSWFlat`` with the inner-product
metric. Below ``EXACT_BELOW`` entries an exact ``IndexFlatIP`` scan is both faster and
exact, so ``index="auto"`` uses it there. (faiss draws HNSW levels with its own
1/ln(M) rule; the original's ``max_layer=16`` has no counterpart and is never reached
at 65,536 entries anyway.) The index is rebuilt on load; files hold only the entries.

Files: ``save``/``load`` use safetensors (tensor ``entries`` [K, 256] float32 plus JSON
metadata ``{"kind": "codebook", "version": 1, "k": K, "dim": 256}``); ``load_vxcb`` /
``save_vxcb`` read and write the original's ``VXCB`` binary for interchange.

k-means: :func:`kmeans` is the original's algorithm (``crates/volt-learn/src/kmeans.rs``)
in batched torch -- k-means++ seeding on a uniform sample of at most 200k vectors (greedy:
the best of 2 + ln k candidates per centroid, scikit-learn's variant), then
epochs of shuffled mini-batches with squared-L2 assignment and per-centroid learning rate
1/count, centroids L2-normalised after every epoch, stopping when the RMS centroid
movement of an epoch falls below ``tol``. Why torch rather than ``faiss.Kmeans(spherical=
True)``: the installed faiss is CPU-only and its k-means is full-batch Lloyd over every
point per iteration, while the torch version runs on the GPU whenever the data is there
(one 8192 x 65,536 matmul per batch) and keeps the original's mini-batch semantics.
"""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from voltx.errors import DataError, MissingInputError

SLOT_DIM = 256
MAX_ENTRIES = 65_536
"""Codebook ids are u16 in the frame format."""
EXACT_BELOW = 4096
"""With fewer entries ``index="auto"`` uses an exact flat scan (faster than HNSW there)."""
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 24, 200, 32
FORMAT_VERSION = 1
VXCB_MAGIC = b"VXCB"
VXCB_HEADER = struct.Struct("<4sIII")  # magic, version, count, dim
NORM_EPS = 1e-10

IndexKind = Literal["auto", "hnsw", "flat"]


class CodebookError(DataError):
    """Entries that cannot form a codebook (wrong shape, zero rows, NaN/inf, too many)."""


def _check_entries(entries: Tensor, where: str) -> Tensor:
    if not isinstance(entries, Tensor) or entries.dim() != 2:
        shape = list(entries.shape) if isinstance(entries, Tensor) else type(entries).__name__
        raise CodebookError(f"{where}: codebook entries must be a [K, {SLOT_DIM}] tensor, got {shape}")
    k, dim = entries.shape
    if dim != SLOT_DIM:
        raise CodebookError(f"{where}: codebook entries have dim {dim}, expected {SLOT_DIM}")
    if not 1 <= k <= MAX_ENTRIES:
        raise CodebookError(f"{where}: a codebook holds 1 to {MAX_ENTRIES:,} entries (u16 ids), got {k:,}")
    entries = entries.detach().to("cpu", torch.float32)
    bad = ~torch.isfinite(entries).all(dim=1)
    if bad.any():
        raise CodebookError(f"{where}: codebook entry {int(bad.nonzero()[0])} contains NaN or inf")
    norms = entries.norm(dim=1)
    zero = norms < math.sqrt(NORM_EPS)
    if zero.any():
        raise CodebookError(f"{where}: codebook entry {int(zero.nonzero()[0])} is a zero vector and cannot be normalised")
    # Rows already unit to float32 rounding are kept bit for bit, so save -> load is exact.
    scale = torch.where((norms - 1.0).abs() <= 1e-6, torch.ones_like(norms), norms)
    return (entries / scale.unsqueeze(1)).contiguous()


class Codebook:
    """``K`` unit vectors (``K <= 65,536``) and an inner-product (= cosine) index over them.

    ``index``: ``"auto"`` (exact below :data:`EXACT_BELOW` entries, HNSW above),
    ``"hnsw"`` or ``"flat"``. HNSW search is approximate (recall@1 well above 0.95 at
    65,536 random entries, ``benchmarks/bench_codebook.py``); its build uses faiss' threads.
    """

    def __init__(self, entries: Tensor, *, index: IndexKind = "auto", source: str = "codebook entries"):
        import faiss

        self.entries = _check_entries(entries, source)
        """float32 ``[K, 256]`` on the CPU, unit rows."""
        if index not in ("auto", "hnsw", "flat"):
            raise ValueError(f"index must be auto, hnsw or flat, got {index!r}")
        self.index_kind = "flat" if index == "flat" or (index == "auto" and self.k < EXACT_BELOW) else "hnsw"
        if self.index_kind == "flat":
            self._index = faiss.IndexFlatIP(SLOT_DIM)
        else:
            self._index = faiss.IndexHNSWFlat(SLOT_DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            self._index.hnsw.efSearch = HNSW_EF_SEARCH
        self._entries_np = self.entries.numpy()
        self._index.add(self._entries_np)
        self._on_device: dict[torch.device, Tensor] = {}

    @property
    def k(self) -> int:
        return self.entries.shape[0]

    @property
    def dim(self) -> int:
        return SLOT_DIM

    def __len__(self) -> int:
        return self.k

    def __repr__(self) -> str:
        return f"Codebook(k={self.k}, dim={SLOT_DIM}, index={self.index_kind!r})"

    def entries_on(self, device: torch.device | str) -> Tensor:
        """The entries on ``device`` (cached: quantising GPU batches copies them once)."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.entries
        if device not in self._on_device:
            self._on_device[device] = self.entries.to(device)
        return self._on_device[device]

    # -- search ------------------------------------------------------------------------------
    def _search(self, x: Tensor, top: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss search of the rows of ``x [..., 256]``: ``(ids [N, top], scores [N, top])``.

        Kept to a few numpy calls: a single query costs little more than the index itself.
        """
        if x.shape[-1] != SLOT_DIM:
            raise ValueError(f"queries must be [..., {SLOT_DIM}], got {list(x.shape)}")
        q = x.detach().reshape(-1, SLOT_DIM)
        if q.device.type != "cpu" or q.dtype != torch.float32:
            q = q.to("cpu", torch.float32)
        a = np.ascontiguousarray(q.numpy())
        if not np.isfinite(a).all():
            raise ValueError("queries contain NaN or inf")
        if a.shape[0] == 0:
            return np.zeros((0, top), dtype=np.int64), np.zeros((0, top), dtype=np.float32)
        scores, ids = self._index.search(a, top)
        return ids, scores

    def search(self, x: Tensor, top: int = 1) -> tuple[Tensor, Tensor]:
        """Nearest ``top`` entries of every row of ``x [..., 256]`` by cosine:
        ``(ids int64 [..., top], inner products float32 [..., top])`` on the CPU.

        The inner product of a query with a unit entry is cosine times the query's norm,
        so the ranking is by cosine for any non-zero query.
        """
        ids, scores = self._search(x, top)
        lead = tuple(x.shape[:-1])
        return torch.from_numpy(ids).reshape(*lead, top), torch.from_numpy(scores).reshape(*lead, top)

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest entry of every row of ``x [..., 256]``: ``(ids int64 [...], vectors [..., 256])``,
        both on ``x``'s device (the search itself runs on the CPU index)."""
        ids, _ = self._search(x, 1)
        lead = tuple(x.shape[:-1])
        flat = ids[:, 0]
        if x.device.type == "cpu":
            vectors = torch.from_numpy(self._entries_np[flat]).reshape(*lead, SLOT_DIM)
            return torch.from_numpy(flat).reshape(lead), vectors if x.dtype == torch.float32 else vectors.to(x.dtype)
        out = torch.from_numpy(flat).reshape(lead).to(x.device)
        return out, self.entries_on(x.device)[out].to(x.dtype)

    def quantization_error(self, x: Tensor) -> float:
        """Mean of ``1 - cos(x, quantize(x))`` over the rows of ``x [..., 256]``.

        0 when every row is (a positive multiple of) an entry, 1 for a row orthogonal to
        its nearest entry; a zero row counts as cosine 0 (error 1), as in the original's
        similarity. This is the quantity of the F2 deliverable "quantization error < 0.15";
        for unit rows the original's mean L2 distance is ``sqrt(2 * (1 - cos))`` per row.
        """
        rows = x.detach().reshape(-1, SLOT_DIM)
        if rows.shape[0] == 0:
            raise ValueError("quantization_error needs at least one vector")
        return float((1.0 - self.cosines(rows)).mean())

    def cosines(self, x: Tensor) -> Tensor:
        """Cosine of every row of ``x [..., 256]`` with its nearest entry (0 for zero rows)."""
        _, vectors = self.quantize(x)
        norms = x.norm(dim=-1)
        cos = (x * vectors).sum(dim=-1) / norms.clamp_min(math.sqrt(NORM_EPS))
        return torch.where(norms < math.sqrt(NORM_EPS), torch.zeros_like(cos), cos)

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the entries as safetensors, atomically (a crash never leaves half a file)."""
        from voltx import artifacts

        return artifacts.save(path, {"entries": self.entries}, "codebook", version=FORMAT_VERSION, k=self.k, dim=SLOT_DIM)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, index: IndexKind = "auto") -> "Codebook":
        """Read a codebook written by :meth:`save` and rebuild its index.

        MissingInputError if ``path`` does not exist; DataError naming the file if it is not
        a safetensors codebook (no ``entries`` tensor, wrong shape or dim, more than 65,536
        entries, zero or non-finite rows).
        """
        from voltx import artifacts

        how = "Build one with `voltx codebook init --corpus ...`."
        art = artifacts.read(path, "codebook", how, untagged=True)
        path, entries, info = art.path, art.tensors.get("entries"), art.meta
        if entries is None:
            raise DataError(f"{path}: not a codebook: it has no 'entries' tensor (tensors: {', '.join(list(art.tensors)[:5]) or 'none'}). {how}")
        if entries.dim() == 2 and info.get("k") not in (None, entries.shape[0]):
            raise DataError(f"{path}: metadata says k={info['k']} but 'entries' has {entries.shape[0]} rows; the file is inconsistent.")
        return cls(entries, index=index, source=str(path))

    def save_vxcb(self, path: str | os.PathLike[str]) -> Path:
        """Write the original's ``VXCB`` format (magic, u32 version 1, count, dim, f32 LE rows)."""
        from voltx import artifacts

        header = VXCB_HEADER.pack(VXCB_MAGIC, FORMAT_VERSION, self.k, SLOT_DIM)
        rows = self.entries.numpy().astype("<f4", copy=False).tobytes()
        return artifacts.write_atomic(path, lambda tmp: tmp.write_bytes(header + rows))

    @classmethod
    def load_vxcb(cls, path: str | os.PathLike[str], *, index: IndexKind = "auto") -> "Codebook":
        """Read the original's ``VXCB`` binary, validating header and size exactly."""
        path = _existing(path)
        data = path.read_bytes()
        if len(data) < VXCB_HEADER.size:
            raise DataError(f"{path}: file has {len(data)} bytes, too short for a {VXCB_HEADER.size}-byte VXCB header")
        magic, version, count, dim = VXCB_HEADER.unpack_from(data)
        if magic != VXCB_MAGIC:
            raise DataError(f"{path}: not a VXCB codebook (magic {magic!r}, expected {VXCB_MAGIC!r})")
        if version != FORMAT_VERSION:
            raise DataError(f"{path}: VXCB version {version} is not supported (expected {FORMAT_VERSION})")
        if dim != SLOT_DIM:
            raise DataError(f"{path}: VXCB dim is {dim}, expected {SLOT_DIM}")
        if not 1 <= count <= MAX_ENTRIES:
            raise DataError(f"{path}: VXCB count is {count:,}; a codebook holds 1 to {MAX_ENTRIES:,} entries")
        expected = VXCB_HEADER.size + count * dim * 4
        if len(data) != expected:
            raise DataError(f"{path}: file has {len(data)} bytes, expected {expected} for count {count}")
        rows = np.frombuffer(data, dtype="<f4", offset=VXCB_HEADER.size).reshape(count, dim)
        return cls(torch.from_numpy(rows.astype(np.float32)), index=index, source=str(path))


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: codebook file not found")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a codebook file")
    return path


# --- k-means ------------------------------------------------------------------------------------

INIT_SAMPLE = 200_000
SCORE_BUDGET = 1 << 26
"""Elements of one batch x centroids score block (256 MB of float32): bounds k-means memory."""


def _assign(x: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid (squared L2) of every row of ``x``.

    ``|x - c|^2 = |x|^2 + |c|^2 - 2 x.c``, so the argmin is the argmax of
    ``x.c - |c|^2 / 2`` (centroids are not unit mid-epoch). Done in centroid blocks so the
    score matrix stays within :data:`SCORE_BUDGET`.
    """
    half = 0.5 * centroids.pow(2).sum(dim=1)
    block = max(1, SCORE_BUDGET // max(1, x.shape[0]))
    best_score = best_idx = None
    for start in range(0, centroids.shape[0], block):
        scores = x @ centroids[start : start + block].T - half[start : start + block]
        score, idx = scores.max(dim=1)
        if best_score is None:
            best_score, best_idx = score, idx
        else:
            better = score > best_score
            best_score = torch.where(better, score, best_score)
            best_idx = torch.where(better, idx + start, best_idx)
    return best_idx


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator, trials: int | None = None) -> Tensor:
    """Greedy k-means++ seeding: ``k`` rows of ``x``, the first uniformly, each next one the
    best of ``trials`` candidates drawn with probability proportional to the squared
    distance to the nearest centroid so far ("best" = smallest total squared distance
    afterwards). ``trials`` defaults to ``2 + ln k`` as in scikit-learn: plain k-means++
    (the original's, ``trials=1``) often seeds two centroids in one tight cluster and none
    in another, which mini-batch updates never repair.

    Everything stays on ``x``'s device (no host sync per centroid). When every remaining
    distance is zero (fewer distinct rows than ``k``) the choice is uniform, as in the original.
    """
    n = x.shape[0]
    trials = trials or 2 + int(math.log(k))
    sq = x.pow(2).sum(dim=1)
    chosen = torch.empty(k, dtype=torch.long, device=x.device)
    chosen[0] = torch.randint(n, (1,), generator=generator, device=x.device)[0]
    min_dist = (sq + sq[chosen[0]] - 2.0 * (x @ x[chosen[0]])).clamp_min(0.0)
    tiny = torch.finfo(torch.float32).tiny
    for c in range(1, k):
        candidates = torch.multinomial(min_dist + tiny, trials, replacement=True, generator=generator)
        dist = (sq.unsqueeze(1) + sq[candidates] - 2.0 * (x @ x[candidates].T)).clamp_min(0.0)  # [n, trials]
        after = torch.minimum(min_dist.unsqueeze(1), dist)
        best = after.sum(dim=0).argmin()
        chosen[c] = candidates[best]
        min_dist = after[:, best]
    return x[chosen].clone()


def kmeans(
    x: Tensor,
    k: int,
    *,
    iters: int = 50,
    batch: int = 8192,
    seed: int = 42,
    tol: float = 1e-5,
    init_sample: int = INIT_SAMPLE,
    on_epoch: Callable[[int, float], None] | None = None,
) -> Tensor:
    """Spherical mini-batch k-means of the rows of ``x [N, D]``; returns unit centroids ``[k, D]``.

    The original's algorithm (module docstring): rows are L2-normalised first (the codebook
    is searched by cosine); greedy k-means++ on a uniform sample of at most ``init_sample`` rows;
    then up to ``iters`` epochs, each a fresh shuffle cut into batches of ``batch`` rows.
    Each batch is assigned to the nearest centroids (squared L2) and every centroid
    becomes the running mean of all rows ever assigned to it, counting its seed row once
    -- the closed form of the original's per-point update with rate 1/count, applied
    per batch (Sculley's mini-batch k-means). Centroids are L2-normalised after each
    epoch; the run stops early when the RMS centroid movement of an epoch is below
    ``tol``. ``on_epoch(epoch, movement)`` is called after every epoch (it may raise to
    stop). Runs on ``x``'s device; deterministic for a given seed and device.
    """
    if x.dim() != 2:
        raise ValueError(f"kmeans needs [N, D] rows, got {list(x.shape)}")
    n = x.shape[0]
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < k:
        raise DataError(f"k-means: need at least k={k:,} vectors, got {n:,}")
    if not torch.isfinite(x).all():
        raise DataError("k-means: the input vectors contain NaN or inf")
    zero = x.norm(dim=1) < math.sqrt(NORM_EPS)
    if zero.any():
        raise DataError(f"k-means: row {int(zero.nonzero()[0])} is a zero vector; drop empty slots first")
    x = F.normalize(x.float(), dim=1)
    device = x.device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    pick = torch.randperm(n, generator=gen, device=device)[:init_sample] if n > init_sample else None
    centroids = kmeans_plus_plus(x if pick is None else x[pick], k, gen)
    centroids = F.normalize(centroids, dim=1)
    counts = torch.ones(k, device=device)
    for epoch in range(1, iters + 1):
        before = centroids.clone()
        order = torch.randperm(n, generator=gen, device=device)
        for start in range(0, n, batch):
            rows = x[order[start : start + batch]]
            nearest = _assign(rows, centroids)
            sums = torch.zeros_like(centroids).index_add_(0, nearest, rows)
            added = torch.zeros_like(counts).index_add_(0, nearest, torch.ones_like(nearest, dtype=counts.dtype))
            total = counts + added
            centroids = (centroids * counts.unsqueeze(1) + sums) / total.unsqueeze(1)
            counts = total
        centroids = F.normalize(centroids, dim=1)
        if not torch.isfinite(centroids).all():
            raise DataError(f"k-means diverged in epoch {epoch}: a centroid became NaN/inf")
        movement = float((centroids - before).pow(2).sum(dim=1).mean().sqrt())
        if on_epoch is not None:
            on_epoch(epoch, movement)
        if movement < tol:
            break
    return centroids
