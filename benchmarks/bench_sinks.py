"""Per-step cost of live sinks on the training thread, against the JSONL writer alone in the same run.

For each variant a RunWriter logs N step records shaped like the loop's (``RunWriter.log_metrics``)
with the sinks attached (:mod:`voltx.runs.sink_feed`):

* jsonl        - no sink: the run store's own metrics.jsonl writer (the reference)
* null         - one sink that does nothing: the feed's own cost (one bounded append per record)
* csv          - the built-in csv sink
* tensorboard, wandb, mlflow - the tracker sinks, each when its extra is installed
* all          - every installed tracker at once
* mirror       - (separately) steps logged while the mirror copies a checkpoint to a local folder

Two patterns, both timed on the calling (training) thread only:

* burst  - bursts of 100 calls with the writer and the sinks drained, untimed, in between: the
           loop's real pattern (one record every log_every steps, GIL-releasing compute between).
           HEADLINE.
* tight  - the N calls in one loop while the sinks' threads consume at the same time and compete
           for the GIL: the worst case, a sink busy with every record.

Sinks start (W&B's service, MLflow's SQLite migrations) before the clock starts. Goal: the
feed adds at most ~10 µs per logged step (the JSONL writer's own order of cost).

    python benchmarks/bench_sinks.py           # N=20000, 5 rounds (the least of them is reported)
    python benchmarks/bench_sinks.py --quick   # N=5000, 3 rounds
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import emit_json
from voltx.plugin_specs import SinkSpec
from voltx.plugins import load_plugins
from voltx.runs.sink_feed import SinkFeed
from voltx.runs.store import RunWriter

BURST = 100
TRACKERS = {"tensorboard": "tensorboardX", "wandb": "wandb", "mlflow": "mlflow"}


class Null:
    def __init__(self, run_dir):
        pass

    def write(self, record):
        pass

    def close(self):
        pass


def make_record(i: int) -> dict:
    return {
        "step": i, "stage": "encoder", "stage_step": i, "total_steps": 1_000_000, "epoch": 1, "batch": i + 1,
        "losses": {"loss": 2.0794415416 - i * 1e-7, "contrastive": 2.4423, "role": 0.6284},
        "lr": 4.99e-4, "samples_per_sec": 1234.56789, "steps_per_sec": 38.58,
    }


def run_variant(specs: list[SinkSpec], n: int, work: Path, tight: bool) -> float:
    """Seconds the training thread spent in ``n`` log_metrics calls."""
    writer = RunWriter.create(work / "runs", "bench", config_toml="[run]\nseed = 42\n", overrides=[], preset=None, argv=[])
    problems: list[str] = []
    feed = SinkFeed(specs, writer.dir, lambda name, message: problems.append(message)) if specs else None
    if feed is not None:
        writer.attach_sinks(feed)
    writer.event("start", phase="bench")
    writer.flush()
    if feed is not None and not feed.wait_drained(300):
        raise SystemExit("sinks did not start within 300 s")
    log, clock = writer.log_metrics, time.perf_counter
    seconds = 0.0
    step = 0
    for start in range(0, n, n if tight else BURST):
        t0 = clock()
        for step in range(start, min(n, start + (n if tight else BURST))):
            log(make_record(step + 1))
        seconds += clock() - t0
        writer.flush()
        if feed is not None and not tight:
            feed.wait_drained(300)
    writer.close("finished", 0)
    if problems:
        raise SystemExit(f"a sink failed: {problems}")
    return seconds


def run_mirror_upload(n: int, work: Path, megabytes: int) -> tuple[float, int, float]:
    """Log steps in bursts while the mirror copies a ``megabytes`` checkpoint to a local folder
    (``file://``): (training-thread seconds, steps logged during the upload, upload seconds)."""
    from voltx.runs.mirror import mirror_spec, preflight

    writer = RunWriter.create(work / "runs", "bench", config_toml="", overrides=[], preset=None, argv=[])
    url = (work / "mirror").resolve().as_uri()
    preflight(url, writer.dir)
    feed = SinkFeed([mirror_spec(url, lambda name, message: print("  mirror:", message))], writer.dir, print)
    writer.attach_sinks(feed)
    step_dir = writer.dir / "checkpoints" / "step-1"
    step_dir.mkdir(parents=True)
    with open(step_dir / "model.safetensors", "wb") as fh:
        fh.write(os.urandom(1 << 20) * megabytes)
    (step_dir / "COMMITTED").write_text("{}")
    log, clock = writer.log_metrics, time.perf_counter
    seconds, steps = 0.0, 0
    t_upload = clock()
    writer.event("checkpoint", step=1, path=str(step_dir))
    while not feed.wait_drained(0) and steps < n:
        t0 = clock()
        for _ in range(BURST):
            steps += 1
            log(make_record(steps))
        seconds += clock() - t0
        writer.flush()
    feed.wait_drained(600)
    upload = clock() - t_upload
    writer.close("finished", 0)
    return seconds, steps, upload


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N=5000, 3 rounds")
    ap.add_argument("-n", type=int, help="step records per variant (default 20000)")
    ap.add_argument("--checkpoint-mb", type=int, default=256, help="size of the checkpoint the mirror copies (default 256)")
    args = ap.parse_args()
    n = args.n or (5000 if args.quick else 20_000)
    repeats = 3 if args.quick else 5
    os.environ.setdefault("WANDB_MODE", "offline")
    plugins = load_plugins()
    variants: dict[str, list[SinkSpec]] = {"jsonl": [], "null": [SinkSpec("null", "", Null)], "csv": [plugins.get("sinks", "csv")]}
    installed = [name for name, module in TRACKERS.items() if importlib.util.find_spec(module)]
    for name in installed:
        variants[name] = [plugins.get("sinks", name)]
    if len(installed) > 1:
        variants["all"] = [plugins.get("sinks", name) for name in installed]
    print(f"sink cost on the training thread: N={n} step records per variant, {repeats} rounds; trackers installed: "
          f"{', '.join(installed) or 'none'}", flush=True)
    us: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="voltx-bench-sinks-") as tmp:
        work = Path(tmp)
        for pattern in ("burst", "tight"):
            times: dict[str, list[float]] = {k: [] for k in variants}
            for r in range(repeats):
                names = list(variants)
                for name in names[r % len(names):] + names[: r % len(names)]:  # rotated order
                    times[name].append(run_variant(variants[name], n, work, tight=pattern == "tight"))  # one runs root: one MLflow store
            # the least of the rounds: other load on the machine only ever adds to a round's time
            us[pattern] = {k: min(v) / n * 1e6 for k, v in times.items()}
    base = us["burst"]["jsonl"]
    for name in variants:
        b, t = us["burst"][name], us["tight"][name]
        print(f"  {name:<12} {b:7.2f} µs/step (+{b - base:6.2f} over jsonl, ratio {b / base:5.2f})   "
              f"sinks busy: {t:7.2f} µs/step (+{t - us['tight']['jsonl']:6.2f})")
    worst = max(us["burst"][k] - base for k in variants)
    print(f"RESULT log_metrics with sinks: at most +{worst:.2f} µs per logged step over the JSONL writer alone "
          f"({base:.2f} µs; ratio {(base + worst) / base:.2f}); with every sink busy at once "
          f"+{max(us['tight'][k] - us['tight']['jsonl'] for k in variants):.2f} µs")
    with tempfile.TemporaryDirectory(prefix="voltx-bench-mirror-") as tmp:
        seconds, steps, upload = run_mirror_upload(n * 10, Path(tmp), args.checkpoint_mb)
    during = seconds / max(steps, 1) * 1e6
    print(f"RESULT mirror: {steps} steps logged while a {args.checkpoint_mb} MB checkpoint was copied ({upload:.2f} s): "
          f"{during:.2f} µs per logged step vs {base:.2f} µs without (ratio {during / base:.2f})")
    emit_json("sinks", {"n": n, "repeats": repeats, "burst": BURST, "installed": installed,
                        "us_per_step": {p: {k: round(v, 3) for k, v in d.items()} for p, d in us.items()},
                        "mirror": {"checkpoint_mb": args.checkpoint_mb, "upload_s": round(upload, 3), "steps": steps,
                                   "us_per_step_during_upload": round(during, 3)}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
