"""Codebook query latency at 65,536 entries: HNSW vs exact faiss vs a torch matmul, and HNSW recall@1.

All three answer the same queries against the same 65,536 unit entries (256-d, seeded
random), each through the call a user makes:

* hnsw   - ``Codebook(entries).quantize(q)``: faiss IndexHNSWFlat, inner product, M=24,
           efConstruction=200, efSearch=32 (the original's parameters). HEADLINE.
* flat   - ``Codebook(entries, index="flat").quantize(q)``: faiss IndexFlatIP, exact.
* torch  - reference: ``(q @ entries.T).argmax(1)`` then gather the rows, exact.

Timed: single queries (one ``[1, 256]`` call each, ms per query) and batches of 1024
(ms per batch and per query), median over rounds that rotate the order of the three.
Index build times are printed too (not part of the latency). Recall@1 of HNSW against the
exact answer, for two kinds of query: "near" (an entry plus noise, cosine ~0.85 to it:
what a codebook meeting the 0.15 quantization-error target is asked) and "random" (uniform
on the sphere: every entry is almost equally far, the hardest case for any ANN index).
The original reports < 0.5 ms per query (HNSW, hnsw_rs). Threads: faiss (OpenMP) and torch
use their defaults unless --threads is given; the figures depend heavily on the machine's
load -- run it on a quiet one.

    python benchmarks/bench_codebook.py            # 2000 single queries, 20 batches, 3 rounds
    python benchmarks/bench_codebook.py --quick    # 300 single queries, 5 batches, 2 rounds
"""

from __future__ import annotations

import argparse
import time

import faiss
import torch
import torch.nn.functional as F

from _common import emit_json, median
from voltx.engine.codebook import Codebook

K, DIM, BATCH = 65_536, 256, 1024
ORIGINAL_MS = 0.5


def torch_quantize(entries: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ids = (q @ entries.T).argmax(dim=1)
    return ids, entries[ids]


def time_singles(fn, queries: torch.Tensor) -> float:
    """ms per query, one call per query."""
    rows = [queries[i : i + 1] for i in range(queries.shape[0])]
    t0 = time.perf_counter()
    for row in rows:
        fn(row)
    return (time.perf_counter() - t0) * 1000 / len(rows)


def time_batches(fn, batches: list[torch.Tensor]) -> float:
    """ms per batch."""
    t0 = time.perf_counter()
    for b in batches:
        fn(b)
    return (time.perf_counter() - t0) * 1000 / len(batches)


def timed_rounds(methods: dict, single_q: torch.Tensor, batches: list[torch.Tensor], rounds: int) -> tuple[dict, dict]:
    """Median ms per single query and per batch of every method, over ``rounds`` rounds that
    rotate which method goes first (after one warm-up call each)."""
    for fn in methods.values():
        fn(single_q[:1])
        fn(batches[0])
    single_ms: dict[str, list[float]] = {m: [] for m in methods}
    batch_ms: dict[str, list[float]] = {m: [] for m in methods}
    names = list(methods)
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for m in order:
            single_ms[m].append(time_singles(methods[m], single_q))
            batch_ms[m].append(time_batches(methods[m], batches))
    return {m: median(v) for m, v in single_ms.items()}, {m: median(v) for m, v in batch_ms.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer queries and rounds (the build still takes a while)")
    ap.add_argument("--singles", type=int, help="single queries per round (default 2000, quick 300)")
    ap.add_argument("--batches", type=int, help=f"batches of {BATCH} per round (default 20, quick 5)")
    ap.add_argument("--rounds", type=int, help="rounds, rotating the order (default 3, quick 2)")
    ap.add_argument("--threads", type=int, default=0, help="faiss OpenMP and torch threads (0 = their defaults)")
    args = ap.parse_args()
    singles = args.singles or (300 if args.quick else 2000)
    n_batches = args.batches or (5 if args.quick else 20)
    rounds = args.rounds or (2 if args.quick else 3)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    threads = {"faiss": faiss.omp_get_max_threads(), "torch": torch.get_num_threads()}

    g = torch.Generator().manual_seed(0)
    entries = F.normalize(torch.randn(K, DIM, generator=g), dim=1)
    t0 = time.perf_counter()
    hnsw = Codebook(entries)
    build_hnsw = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat = Codebook(entries, index="flat")
    build_flat = time.perf_counter() - t0
    assert hnsw.index_kind == "hnsw" and flat.index_kind == "flat"
    print(f"codebook: {K:,} x {DIM} entries; build hnsw {build_hnsw:.1f} s, flat {build_flat:.2f} s; threads {threads}")

    def near(n: int) -> torch.Tensor:
        src = torch.randint(K, (n,), generator=g)
        return entries[src] + 0.62 * F.normalize(torch.randn(n, DIM, generator=g), dim=1)  # cos ~0.85

    # recall@1 against the exact answer
    recall = {}
    for kind, q in (("near", near(10_000)), ("random", torch.randn(10_000, DIM, generator=g))):
        exact = torch_quantize(entries, q)[0]
        assert torch.equal(flat.quantize(q)[0], exact)
        recall[kind] = float((hnsw.quantize(q)[0] == exact).float().mean())
    print(f"recall@1 of HNSW vs exact: near-entry queries {recall['near']:.4f}, uniform random queries {recall['random']:.4f}")

    methods = {
        "hnsw": hnsw.quantize,
        "flat": flat.quantize,
        "torch": lambda q: torch_quantize(entries, q),
    }
    single_q = near(singles)
    batches = [near(BATCH) for _ in range(n_batches)]
    single, batch = timed_rounds(methods, single_q, batches, rounds)
    names = list(methods)

    print(f"\n{'method':<8}{'single ms/query':>18}{'batch-1024 ms':>16}{'batch ms/query':>16}")
    for m in names:
        print(f"{m:<8}{single[m]:>18.4f}{batch[m]:>16.2f}{batch[m] / BATCH:>16.5f}")
    ratios = {
        "single_flat_over_hnsw": single["flat"] / single["hnsw"],
        "single_torch_over_hnsw": single["torch"] / single["hnsw"],
        "batch_flat_over_hnsw": batch["flat"] / batch["hnsw"],
        "batch_torch_over_hnsw": batch["torch"] / batch["hnsw"],
    }
    print("\nspeed-up of HNSW: single query " f"{ratios['single_flat_over_hnsw']:.1f}x vs flat, {ratios['single_torch_over_hnsw']:.1f}x vs torch; "
          f"batch of {BATCH} {ratios['batch_flat_over_hnsw']:.1f}x vs flat, {ratios['batch_torch_over_hnsw']:.1f}x vs torch")
    verdict = "met" if single["hnsw"] < ORIGINAL_MS else "not met"
    print(f"RESULT codebook hnsw single query = {single['hnsw']:.4f} ms at {K:,} entries "
          f"({ratios['single_flat_over_hnsw']:.1f}x faster than exact faiss; recall@1 {recall['near']:.4f}; original < {ORIGINAL_MS} ms: {verdict})")
    emit_json("codebook", {
        "k": K, "dim": DIM, "batch": BATCH, "singles": singles, "batches": n_batches, "rounds": rounds, "threads": threads,
        "build_s": {"hnsw": round(build_hnsw, 2), "flat": round(build_flat, 3)},
        "single_ms_per_query": {m: round(v, 5) for m, v in single.items()},
        "batch_ms": {m: round(v, 3) for m, v in batch.items()},
        "batch_ms_per_query": {m: round(v / BATCH, 6) for m, v in batch.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "recall_at_1": {k: round(v, 4) for k, v in recall.items()},
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
