"""Batched HRR bind/unbind throughput: voltx.engine.hdc vs torchhd vs a numpy rfft reference.

For each batch size (default 1, 64 and 4096 pairs of 256-dim float32 unit vectors, the
same inputs for every implementation) it times:

* bind
  - ``voltx``          ``hdc.bind(a, b)``: validation on (one fused norm check), rfft/irfft
  - ``voltx_nocheck``  ``hdc.bind(a, b, check=False)``: the hot-loop form
  - ``torchhd``        ``torchhd.bind(HRRTensor(a), HRRTensor(b))`` = ``real(ifft(fft(a) * fft(b)))``
  - ``numpy``          ``np.fft.irfft(np.fft.rfft(a) * np.fft.rfft(b), n=D)``
* unbind (exact division with the 1e-10 bin cutoff)
  - ``voltx`` / ``voltx_nocheck``  ``hdc.unbind(c, a)``
  - ``torchhd``        ``c.bind(a.exact_inverse())``: the same division without the cutoff
                       (torchhd's own ``inverse()`` is the approximate conjugate, not comparable)
  - ``numpy``          the cutoff division written with ``np.fft.rfft``/``irfft``

Before timing, every implementation's output is compared with voltx's (max abs
difference printed). Each measurement runs enough calls to take about ``--target`` seconds;
implementations run in rotated order over ``--repeats`` rounds and the median pairs/s is
reported. Torch runs with ``--threads`` intra-op threads (default 1: stable figures on a
shared machine; numpy's FFT is single-threaded). Headline: voltx/torchhd bind throughput
ratio at each batch size (goal >= 1.0).

    python benchmarks/bench_hdc.py            # batches 1, 64, 4096; 5 rounds
    python benchmarks/bench_hdc.py --quick    # 3 rounds, shorter measurements
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torchhd

from _common import emit_json, median
from voltx.engine import hdc

D = 256


def unit_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, n, D, generator=g)
    return a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)


def np_unbind(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    fa = np.fft.rfft(a, axis=-1)
    power = fa.real**2 + fa.imag**2
    scale = (power >= 1e-10) / np.maximum(power, 1e-10)
    return np.fft.irfft(np.fft.rfft(c, axis=-1) * np.conj(fa) * scale, n=D, axis=-1)


def implementations(a: torch.Tensor, b: torch.Tensor) -> dict[str, dict]:
    """op -> impl -> zero-argument callable, all on the same inputs."""
    c = hdc.bind(a, b)
    ha, hb, hc = torchhd.HRRTensor(a), torchhd.HRRTensor(b), torchhd.HRRTensor(c)
    na, nb, nc = a.numpy(), b.numpy(), c.numpy()
    return {
        "bind": {
            "voltx": lambda: hdc.bind(a, b),
            "voltx_nocheck": lambda: hdc.bind(a, b, check=False),
            "torchhd": lambda: torchhd.bind(ha, hb),
            "numpy": lambda: np.fft.irfft(np.fft.rfft(na, axis=-1) * np.fft.rfft(nb, axis=-1), n=D, axis=-1),
        },
        "unbind": {
            "voltx": lambda: hdc.unbind(c, a),
            "voltx_nocheck": lambda: hdc.unbind(c, a, check=False),
            "torchhd": lambda: hc.bind(ha.exact_inverse()),
            "numpy": lambda: np_unbind(nc, na),
        },
    }


def as_array(x) -> np.ndarray:
    return x.as_subclass(torch.Tensor).numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def calls_for(fn, target: float) -> int:
    """How many calls take about ``target`` seconds (after a warm-up call)."""
    fn()
    n, elapsed = 1, 0.0
    while elapsed < target / 4:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed < target / 4:
            n *= 4
    return max(1, int(n * target / max(elapsed, 1e-9)))


def time_calls(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of ~0.1 s measurements")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64, 4096], help="pairs per call")
    ap.add_argument("--repeats", type=int, help="rounds over all implementations (default 5, quick 3)")
    ap.add_argument("--target", type=float, help="seconds per measurement (default 0.25, quick 0.1)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    target = args.target or (0.1 if args.quick else 0.25)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} ({args.threads} thread(s)), torchhd {torchhd.__version__}, "
          f"numpy {np.__version__}; D={D}, {repeats} rounds of ~{target} s")

    results: dict[str, dict] = {}
    for batch in args.batches:
        a, b = unit_pairs(batch, seed=batch)
        impls = implementations(a, b)
        for op, fns in impls.items():
            want = as_array(fns["voltx"]())
            diffs = {name: float(np.abs(as_array(fn()) - want).max()) for name, fn in fns.items() if name != "voltx"}
            calls = {name: calls_for(fn, target) for name, fn in fns.items()}
            names = list(fns)
            samples: dict[str, list[float]] = {name: [] for name in names}
            for r in range(repeats):
                for name in names[r % len(names):] + names[: r % len(names)]:  # rotated order
                    samples[name].append(batch * calls[name] / time_calls(fns[name], calls[name]))
            rate = {name: median(v) for name, v in samples.items()}
            results.setdefault(op, {})[str(batch)] = {
                "pairs_per_s": {k: round(v, 1) for k, v in rate.items()},
                "ratio_voltx_torchhd": round(rate["voltx"] / rate["torchhd"], 3),
                "ratio_nocheck_torchhd": round(rate["voltx_nocheck"] / rate["torchhd"], 3),
                "ratio_voltx_numpy": round(rate["voltx"] / rate["numpy"], 3),
                "max_abs_diff_vs_voltx": {k: float(f"{v:.3g}") for k, v in diffs.items()},
            }
            cells = "  ".join(f"{k} {v:>12,.0f}" for k, v in rate.items())
            print(f"{op:6s} batch {batch:5d}  pairs/s: {cells}  | voltx/torchhd {rate['voltx'] / rate['torchhd']:.2f}"
                  f"  nocheck/torchhd {rate['voltx_nocheck'] / rate['torchhd']:.2f}"
                  f"  | max|diff| {', '.join(f'{k} {v:.1e}' for k, v in diffs.items())}")

    ratios = {batch: results["bind"][str(batch)]["ratio_voltx_torchhd"] for batch in args.batches}
    verdict = "met" if min(ratios.values()) >= 1.0 else "NOT met"
    print("RESULT bind voltx/torchhd pairs/s ratio "
          + ", ".join(f"batch {k}: {v:.2f}" for k, v in ratios.items())
          + f" (median of {repeats}; goal >= 1.0: {verdict})")
    emit_json("hdc", {"dim": D, "threads": args.threads, "repeats": repeats, "torch": torch.__version__,
                      "torchhd": torchhd.__version__, **results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
