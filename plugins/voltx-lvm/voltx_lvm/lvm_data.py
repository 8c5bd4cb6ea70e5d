"""Ordered vector sequences for the LVM: reading an .npz safely, windows, the ordered split.

Every source becomes one :class:`Sequences`: a matrix of vectors and the windows over it (row
indices: ``k`` context rows, then the target row). An .npz of ``context_sequences`` /
``target_vectors`` is laid out the same way (its contexts, then its targets), so one collate
and one evaluation serve both layouts. Numpy only: no torch here.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voltx.config_checks import require_at_least, require_fraction
from voltx.errors import ConfigError, DataError, MissingInputError

SAFE_SAVE = ("save numeric arrays only, e.g. np.savez(path, vectors=np.asarray(vectors, dtype=np.float32), "
             "article_ids=np.asarray(ids, dtype=np.int64)); keep texts and UUIDs out of it (a JSON file beside it)")
ID_KEYS = ("article_ids", "batch_ids")
"""Names the article ids go by (``batch_ids`` is the LVM handoff's)."""


@dataclass
class Sequences:
    vectors: np.ndarray
    """[M, d] float32."""
    windows: np.ndarray
    """[N, k + 1] int64 row indices: k context rows, then the target row; in data order."""
    about: str
    """Where the vectors come from, for the banner."""

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class Split:
    """Ordered parts of the windows (indices into ``Sequences.windows``): fit | dev | valid."""

    fit: range
    dev: range
    valid: range


def ordered_split(n: int, valid_fraction: float, dev_fraction: float, where: str) -> Split:
    """The last ``valid_fraction`` of ``n`` windows for validation (the handoff: ``int(0.8 * n)``
    splits), the last ``dev_fraction`` of the rest for dev; never shuffled across a boundary."""
    require_fraction("lvm", {"valid_fraction": valid_fraction, "dev_fraction": dev_fraction})
    cut = int((1.0 - valid_fraction) * n)
    dev_cut = int((1.0 - dev_fraction) * cut)
    split = Split(range(0, dev_cut), range(dev_cut, cut), range(cut, n))
    if not split.fit or not split.valid:
        raise DataError(f"{where}: {n} windows leave the {'training' if not split.fit else 'validation'} part empty "
                        f"(valid_fraction {valid_fraction}, dev_fraction {dev_fraction}); give more vectors "
                        "(or longer articles), or change the fractions.")
    return split


def check(cfg) -> None:
    """The phase's input check (``PhaseSpec.check``), before the run directory exists: the
    configured .npz read and split exactly as the run will (the built-in corpus is the code's own),
    and the model's shape settings. Raises the error the run would, so bad input leaves no run."""
    require_at_least("lvm", cfg, ("context",))
    if cfg.model == "transformer" and cfg.hidden % cfg.heads:
        raise ConfigError(f"lvm.hidden ({cfg.hidden}) must be a multiple of lvm.heads ({cfg.heads}) for the transformer")
    require_fraction("lvm", cfg, ("valid_fraction", "dev_fraction"))
    if cfg.data:
        windows = len(read_npz(cfg.data, cfg.context).windows)
        ordered_split(min(windows, cfg.max_windows) if cfg.max_windows > 0 else windows,
                      cfg.valid_fraction, cfg.dev_fraction, cfg.data)


def read_npz(path: str | Path, context: int) -> Sequences:
    """The windows of an .npz, checked: numeric arrays of the right shapes, finite, no pickle."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"lvm.data: {path} does not exist; give an .npz of numeric arrays, or data = \"\" "
                                "for the built-in corpus.")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not an .npz archive numpy can read without pickle ({exc}); {SAFE_SAVE}.") from None
    with npz:
        keys = set(npz.files)
        if "context_sequences" in keys:
            ctx = _array(npz, path, "context_sequences", ndim=3, shape="[N, k, d]")
            tgt = _array(npz, path, "target_vectors", ndim=2, shape="[N, d]")
            return _from_windows(path, ctx, tgt, context)
        if "vectors" in keys:
            vectors = _array(npz, path, "vectors", ndim=2, shape="[M, d]")
            id_key = next((k for k in ID_KEYS if k in keys), None)
            if id_key is None:
                raise DataError(f"{path}: has 'vectors' but no article ids ({' or '.join(map(repr, ID_KEYS))}, one per "
                                "vector) to keep windows inside an article; add them (all zeros for one long sequence).")
            ids = _ids(npz, path, id_key, len(vectors))
            return _from_articles(path, vectors, ids, context)
    raise DataError(f"{path}: found keys {sorted(keys)}; expected 'context_sequences' + 'target_vectors', "
                    f"or 'vectors' + 'article_ids'.")


def _load(npz, path: Path, key: str) -> np.ndarray:
    if key not in npz.files:
        raise DataError(f"{path}: key {key!r} is missing (keys: {sorted(npz.files)}).")
    try:
        return npz[key]
    except ValueError:  # numpy: "Object arrays cannot be loaded when allow_pickle=False"
        raise DataError(f"{path}: key {key!r} holds Python objects (a pickled object array), which voltx does not "
                        f"load; {SAFE_SAVE}.") from None


def _array(npz, path: Path, key: str, *, ndim: int, shape: str) -> np.ndarray:
    arr = _load(npz, path, key)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{path}: key {key!r} has dtype {arr.dtype}; expected numbers {shape} (float32); {SAFE_SAVE}.")
    if arr.ndim != ndim or 0 in arr.shape:
        raise DataError(f"{path}: key {key!r} has shape {list(arr.shape)}; expected a non-empty {shape}.")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"{path}: key {key!r} has NaN or infinite values in {len(rows)} row(s), first at index "
                        f"{int(rows[0])}; drop or repair those vectors.")
    return arr


def _ids(npz, path: Path, key: str, count: int) -> np.ndarray:
    ids = _load(npz, path, key)
    if ids.dtype.kind not in "iuUS" or ids.ndim != 1:
        raise DataError(f"{path}: key {key!r} has dtype {ids.dtype} and shape {list(ids.shape)}; expected one "
                        f"integer or string id per vector, [M].")
    if len(ids) != count:
        raise DataError(f"{path}: key {key!r} has {len(ids)} ids but 'vectors' has {count} rows; one id per vector.")
    return ids


def _from_windows(path: Path, ctx: np.ndarray, tgt: np.ndarray, context: int) -> Sequences:
    n, k, d = ctx.shape
    if len(tgt) != n:
        raise DataError(f"{path}: 'context_sequences' has {n} windows but 'target_vectors' has {len(tgt)}; one target each.")
    if tgt.shape[1] != d:
        raise DataError(f"{path}: 'context_sequences' vectors have d = {d} but 'target_vectors' have d = {tgt.shape[1]}.")
    if k != context:
        raise DataError(f"{path}: 'context_sequences' has {k} vectors per window but lvm.context = {context}; "
                        f"set context={k}, or save vectors + article_ids to cut windows of any size.")
    vectors = np.concatenate([ctx.reshape(n * k, d), tgt])
    windows = np.concatenate([np.arange(n * k).reshape(n, k), (n * k + np.arange(n))[:, None]], axis=1)
    return Sequences(vectors, windows.astype(np.int64), f"{path.name}: {n:,} windows x {k} -> 1, d = {d}")


def _from_articles(path: Path, vectors: np.ndarray, ids: np.ndarray, context: int) -> Sequences:
    windows = article_windows(ids, context)
    articles = 1 + int(np.count_nonzero(ids[1:] != ids[:-1]))
    return Sequences(vectors, windows, f"{path.name}: {len(vectors):,} vectors in {articles:,} articles, d = {vectors.shape[1]}")


def article_windows(ids: np.ndarray, context: int) -> np.ndarray:
    """[N, context + 1] row windows in order, none crossing a change of article id."""
    if context < 1:
        raise DataError(f"lvm.context must be at least 1, got {context}")
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    first = [np.arange(s, e - context) for s, e in zip(starts, ends) if e - s > context]
    begin = np.concatenate(first) if first else np.zeros(0, dtype=np.int64)
    return (begin[:, None] + np.arange(context + 1)).astype(np.int64)
