"""``voltx data mix a.jsonl:0.6 b.jsonl:0.4 --output mix.jsonl``: a deterministic weighted mix.

Weights are normalised. Each source contributes ``round(total * weight)`` records (largest
remainder, so the counts sum to ``total``), sampled without replacement (with replacement only
with ``replace=True``); the chosen records are shuffled together. Same inputs and seed -> the
same bytes. Without ``total``, the mix is the largest one that keeps the proportions without
replacement. A ``total`` that would need more records than a source has is refused (UsageError
naming the largest total that keeps the weights, and ``--replace``): taking all of the small
source and the rest from the others would silently change the ratio. Every line must be a JSON
object (DataError with file:line otherwise). The output is written atomically; missing folders
are created.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from voltx.errors import DataError, MissingInputError, UsageError


@dataclass
class MixResult:
    output: Path
    total: int
    counts: dict[str, int]
    sizes: dict[str, int]


def parse_source(text: str) -> tuple[Path, float]:
    """``path:weight`` (weight defaults to 1)."""
    path, sep, weight = text.rpartition(":")
    if not sep or not path:
        return Path(text), 1.0
    try:
        w = float(weight)
    except ValueError:
        return Path(text), 1.0  # a ':' in the file name, no weight
    if not math.isfinite(w) or w < 0:
        raise UsageError(f"{text!r}: the weight must be a non-negative number, got {weight!r}")
    return Path(path), w


def read_jsonl_lines(path: Path) -> list[str]:
    """The non-blank lines of a JSONL file, each checked to be a JSON object."""
    if not path.exists():
        raise MissingInputError(f"no such file: {path}")
    out: list[str] = []
    with open(path, "rb") as fh:
        offset = 0
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{lineno}: byte offset {offset + exc.start}: not valid UTF-8 ({exc.reason})") from None
            offset += len(raw)
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}")
            out.append(line)
    return out


def quotas(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder apportionment of ``total`` by ``weights`` (which sum to 1)."""
    exact = [total * w for w in weights]
    counts = [math.floor(x) for x in exact]
    rest = total - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:rest]:
        counts[i] += 1
    return counts


def largest_total(sizes: list[int], weights: list[float]) -> int:
    """The largest total whose quotas (:func:`quotas`) no source's size falls short of."""
    total = min(math.floor(n / w + 1e-9) for n, w in zip(sizes, weights) if w > 0)
    while total > 0 and any(q > n for q, n in zip(quotas(total, weights), sizes)):
        total -= 1  # largest-remainder rounding can add one record to a source that is exactly used up
    return total


def mix(
    sources: list[tuple[Path, float]],
    output: str | Path,
    *,
    total: int | None = None,
    seed: int = 0,
    replace: bool = False,
) -> MixResult:
    if not sources:
        raise UsageError("name at least one source: path.jsonl:weight")
    names = [str(p) for p, _ in sources]
    if len(set(names)) != len(names):
        raise UsageError("a source is named twice; give it one weight")
    weight_sum = sum(w for _, w in sources)
    if weight_sum <= 0:
        raise UsageError("the weights sum to 0; give at least one source a positive weight")
    weights = [w / weight_sum for _, w in sources]
    if total is not None and total < 0:
        raise UsageError(f"--total must be non-negative, got {total}")
    data = [read_jsonl_lines(Path(p)) for p, _ in sources]
    sizes = [len(d) for d in data]
    for name, size, w in zip(names, sizes, weights):
        if size == 0 and w > 0:
            raise DataError(f"{name}: no records to mix (the file is empty)")
    if total is None:
        total = sum(sizes) if replace else largest_total(sizes, weights)
    counts = quotas(total, weights)
    short = [(name, q, size, w) for name, q, size, w in zip(names, counts, sizes, weights) if q > size]
    if short and not replace:
        name, q, size, w = short[0]
        best = largest_total(sizes, weights)
        raise UsageError(
            f"--total {total} needs {q:,} records from {name} (weight {w:.3g}) but it has {size:,}; taking all of it "
            f"would change the ratio. The largest mix that keeps the weights without resampling is --total {best} "
            "(the default when --total is left out); pass --replace to sample with replacement beyond it."
        )
    rng = random.Random(seed)
    chosen: list[str] = []
    for lines_, q in zip(data, counts):
        if replace:
            idx = [rng.randrange(len(lines_)) for _ in range(q)]
        else:
            idx = rng.sample(range(len(lines_)), q)
        chosen.extend(lines_[i] for i in idx)
    rng.shuffle(chosen)
    if not chosen:
        raise DataError("the mix is empty: check the weights and --total")
    from voltx.data.stream import atomic_output

    with atomic_output(output) as fh:
        fh.write("\n".join(chosen) + "\n")
    return MixResult(Path(output), len(chosen), dict(zip(names, counts)), dict(zip(names, sizes)))
