"""Per-call cost of RunWriter.log_metrics (enqueue to the writer thread) vs synchronous logging.

For N calls (default 200k), each building a fresh metrics record shaped like the one the
shared loop logs (step, stage, losses dict, lr, samples/s ...), it times:

* build        - building the record only (the floor every variant pays; also shown subtracted)
* dumps        - ``json.dumps(record)`` alone
* voltx_dumps  - ``voltx.runs.jsonl.dumps(record)``: what the writer thread runs per record
* sync         - ``f.write(json.dumps(record) + "\\n"); f.flush()`` per call: a naive synchronous
                 logger (the reference)
* voltx_burst  - ``RunWriter.log_metrics(record)`` (stamps time/attempt, enqueues) in bursts of
                 100 with the writer drained, untimed, between bursts: the loop's real pattern
                 (one record every log_every steps, GIL-releasing compute in between, so the
                 writer thread is idle when the loop calls). HEADLINE.
* voltx        - the same calls in one tight loop of N: the writer thread wakes up and competes
                 for the GIL, so part of its serialisation lands on the caller. Its ``flush()``
                 afterwards (the time for the thread to drain the queue) is timed and reported
                 separately, and "(enqueue + drain) / N" is printed, so nothing is hidden.

Variants run in rotated order over a few repeats (median reported). Headline: log_metrics
µs/call (writer idle) and its ratio to the synchronous logger. Goal: the loop-side cost is
a small fraction of a synchronous write (voltx/runs/jsonl.py says "about a microsecond").

    python benchmarks/bench_logging.py            # N=200000, 3 repeats
    python benchmarks/bench_logging.py --quick    # N=50000, 2 repeats
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _common import emit_json, median
from voltx.runs.jsonl import dumps as voltx_dumps
from voltx.runs.store import RunWriter

BURST = 100


def make_record(i: int) -> dict:
    return {
        "step": i, "stage": "encoder", "stage_step": i, "total_steps": 1_000_000, "epoch": 1, "batch": i + 1,
        "losses": {"loss": 2.0794415416 - i * 1e-7, "contrastive": 2.4423, "role": 0.6284},
        "lr": 4.99e-4, "samples_per_sec": 1234.56789, "steps_per_sec": 38.58,
    }


def t_build(n: int, _work: Path) -> dict:
    t0 = time.perf_counter()
    for i in range(n):
        make_record(i)
    return {"seconds": time.perf_counter() - t0}


def t_dumps(n: int, _work: Path) -> dict:
    dumps = json.dumps
    t0 = time.perf_counter()
    for i in range(n):
        dumps(make_record(i))
    return {"seconds": time.perf_counter() - t0}


def t_voltx_dumps(n: int, _work: Path) -> dict:
    t0 = time.perf_counter()
    for i in range(n):
        voltx_dumps(make_record(i))
    return {"seconds": time.perf_counter() - t0}


def t_sync(n: int, work: Path) -> dict:
    dumps = json.dumps
    path = work / f"sync-{time.monotonic_ns()}.jsonl"
    with open(path, "a", encoding="utf-8") as f:
        t0 = time.perf_counter()
        for i in range(n):
            f.write(dumps(make_record(i)) + "\n")
            f.flush()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": path.stat().st_size}


def t_voltx(n: int, work: Path) -> dict:
    writer = RunWriter.create(work / "runs", "bench", config_toml="", overrides=[], preset=None, argv=[])
    writer.flush()  # the manifest/setup writes are not part of the measurement
    log = writer.log_metrics
    t0 = time.perf_counter()
    for i in range(n):
        log(make_record(i))
    t1 = time.perf_counter()
    writer.flush()  # block until the writer thread has written (and flushed) every record
    t2 = time.perf_counter()
    size = writer.paths.metrics.stat().st_size
    writer.close("finished", 0)
    lines = sum(1 for _ in open(writer.paths.metrics, "rb"))
    if lines != n:
        raise SystemExit(f"metrics.jsonl has {lines} lines, expected {n}")
    return {"seconds": t1 - t0, "drain_seconds": t2 - t1, "bytes": size}


def t_voltx_burst(n: int, work: Path) -> dict:
    """Enqueue in bursts of BURST calls with the writer drained (untimed) between bursts.

    This is the loop's real pattern: one record per log_every steps, with GIL-releasing
    compute in between, so the writer thread is idle when log_metrics is called. In the
    tight loop of t_voltx the writer thread competes for the GIL and part of its
    serialisation time lands on the caller.
    """
    writer = RunWriter.create(work / "runs", "bench", config_toml="", overrides=[], preset=None, argv=[])
    writer.flush()
    log, clock = writer.log_metrics, time.perf_counter
    seconds = drain = 0.0
    for start in range(0, n, BURST):
        t0 = clock()
        for i in range(start, min(n, start + BURST)):
            log(make_record(i))
        t1 = clock()
        writer.flush()
        drain += clock() - t1
        seconds += t1 - t0
    writer.close("finished", 0)
    return {"seconds": seconds, "drain_seconds": drain}


VARIANTS = {"build": t_build, "dumps": t_dumps, "voltx_dumps": t_voltx_dumps, "sync": t_sync, "voltx": t_voltx, "voltx_burst": t_voltx_burst}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N=50000, 2 repeats")
    ap.add_argument("-n", type=int, help="calls per variant (default 200000)")
    ap.add_argument("--repeats", type=int, help="rounds over all variants (default 3, quick 2)")
    args = ap.parse_args()
    n = args.n or (50_000 if args.quick else 200_000)
    repeats = args.repeats or (2 if args.quick else 3)
    names = list(VARIANTS)
    results: dict[str, list[dict]] = {k: [] for k in names}
    print(f"logging cost: N={n} calls per variant, {repeats} rounds (rotated order)", flush=True)
    with tempfile.TemporaryDirectory(prefix="voltx-bench-log-") as tmp:
        work = Path(tmp)
        for name in names:  # warm-up (imports, first file creation, thread start)
            VARIANTS[name](min(n, 2000), work)
        for r in range(repeats):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                results[name].append(VARIANTS[name](n, work))

    us = {k: median([x["seconds"] for x in v]) / n * 1e6 for k, v in results.items()}
    drain_s = median([x["drain_seconds"] for x in results["voltx"]])
    voltx_total_us = median([(x["seconds"] + x["drain_seconds"]) for x in results["voltx"]]) / n * 1e6
    burst_drain_us = median([x["drain_seconds"] for x in results["voltx_burst"]]) / n * 1e6
    rec_bytes = results["sync"][0]["bytes"] / n
    b = us["build"]

    def row(label: str, key: str, extra: str = "") -> None:
        print(f"  {label:<40} {us[key]:8.3f} µs/call   (net of build {us[key] - b:7.3f}){extra}")

    print(f"  {'record build only (floor)':<40} {b:8.3f} µs/call")
    row("json.dumps", "dumps")
    row("voltx.runs.jsonl.dumps (writer thread's)", "voltx_dumps")
    row("sync dumps+write+flush (reference)", "sync", f"  ~{rec_bytes:.0f} B/record")
    row(f"log_metrics, bursts of {BURST} (writer idle)", "voltx_burst", f"  [drain between bursts {burst_drain_us:.3f} µs/record, untimed]")
    row("log_metrics, tight loop (writer busy)", "voltx")
    print(f"  {'  then writer drain: flush()':<40} {drain_s:8.3f} s after the last call = {drain_s / n * 1e6:.3f} µs/record (all N)")
    print(f"  {'  tight loop incl. drain':<40} {voltx_total_us:8.3f} µs/call  ((enqueue loop + drain) / N)")
    ratio = us["voltx_burst"] / us["sync"]
    ratio_net = (us["voltx_burst"] - b) / max(us["sync"] - b, 1e-9)
    ratio_tight = us["voltx"] / us["sync"]
    print(f"RESULT log_metrics {us['voltx_burst']:.3f} µs/call (writer idle) vs synchronous json.dumps+write+flush "
          f"{us['sync']:.3f} µs/call: ratio {ratio:.3f} ({1 / ratio:.1f}x cheaper; net of record building {ratio_net:.3f}); "
          f"tight loop {us['voltx']:.3f} µs/call (ratio {ratio_tight:.3f}); vs json.dumps alone {us['voltx_burst'] / us['dumps']:.3f}")
    emit_json("logging", {
        "n": n, "repeats": repeats, "burst": BURST,
        "us_per_call": {k: round(v, 3) for k, v in us.items()},
        "voltx_drain_seconds": round(drain_s, 4), "voltx_drain_us_per_record": round(drain_s / n * 1e6, 3),
        "voltx_incl_drain_us_per_call": round(voltx_total_us, 3), "voltx_burst_drain_us_per_record": round(burst_drain_us, 3),
        "ratio_voltx_vs_sync": round(ratio, 4), "ratio_voltx_vs_sync_net_of_build": round(ratio_net, 4),
        "ratio_voltx_tight_vs_sync": round(ratio_tight, 4),
        "ratio_voltx_vs_dumps": round(us["voltx_burst"] / us["dumps"], 4), "bytes_per_record": round(rec_bytes, 1),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
