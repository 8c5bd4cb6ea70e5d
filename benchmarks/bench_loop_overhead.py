"""Throughput of the shared training loop (voltx.train.loop.fit) vs a bare PyTorch loop.

Workload: the translator's CnnFrameEncoder (vocab 4096, seq len 64, batch 32) trained with the
encoder stage's loss (0.8 * symmetric InfoNCE(tau=0.07) on (code, docstring) summaries +
0.2 * role cross-entropy, padding masked; the step also computes role accuracy and top-1
as the stage's ``losses`` does) on synthetic token batches from a fixed generator.
Both loops see the very same pre-built batch tensors, the same seed, the same number of
steps, AdamW, grad clip 1.0 and the same warmup-cosine lr function.

* voltx: ``fit(ctx, Stage(...))`` through a real RunContext / RunWriter / MetricsHub (the
  default alert rules: loss-spike, throughput-drop, low-disk) in a temporary runs dir,
  log_every=10, checkpoint_every=0 (= one checkpoint at the end of the single epoch),
  no evaluation, no per-epoch file.
* bare: nanoGPT-style ``lr -> forward -> zero_grad -> backward -> clip -> step`` with a
  ``loss.item()`` progress print every 10 steps, then at the same point (end of the
  epoch) it saves model + optimizer tensors with safetensors (no fsync, no atomic rename).

Timed: the training call itself (``fit`` / the bare loop incl. its end-of-epoch save).
Not timed: model/optimizer construction, RunWriter creation, writer close.
The checkpoint is INCLUDED in both timings; the script also prints the ratio with both
checkpoint costs subtracted (the loop's from its ``checkpoint`` event, the bare loop's
measured around its save) so either view can be quoted.

Runs alternate bare, voltx, bare, voltx ... after one warm-up run of each; the headline
is the median over pairs of (voltx samples/s) / (bare samples/s). Goal: >= 0.97.

    python benchmarks/bench_loop_overhead.py            # 100 steps x 4 pairs
    python benchmarks/bench_loop_overhead.py --quick    # 20 steps x 2 pairs
    python benchmarks/bench_loop_overhead.py --threads 1 --steps 50 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from _common import emit_json, median
from voltx.config import build_config
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.tokenizer import PAD_ID
from voltx.plugins import load_plugins
from voltx.runs.jsonl import read_jsonl
from voltx.runs.store import RunWriter
from voltx.plugin_specs import PhaseSpec
from voltx.train.context import RunContext
from voltx.train.device import configure_determinism
from voltx.train.loop import Stage, fit
from voltx.train.metrics import MetricsHub
from voltx.train.progress import Reporter
from voltx.train.schedules import warmup_cosine
from voltx.train.signals import StopFlag

VOCAB, SEQ, BATCH = 4096, 64, 32
LR, WD, WARMUP_FRACTION, MIN_LR_RATIO, CLIP, TAU = 5e-4, 0.01, 0.1, 0.01, 1.0, 0.07
C_WEIGHT, R_WEIGHT = 0.8, 0.2
IGNORE = -100
LOG_EVERY = 10
SEED = 42
DEVICE = torch.device("cpu")


# --- identical inputs for both loops -----------------------------------------------------------


def make_batches(n: int, seed: int = 1234) -> list[tuple[torch.Tensor, ...]]:
    """``n`` collated batches shaped like translator_train.collate's output, from a fixed generator."""
    g = torch.Generator().manual_seed(seed)
    out = []
    pos = torch.arange(SEQ)
    for _ in range(n):
        code_len = torch.randint(16, SEQ + 1, (BATCH, 1), generator=g)
        doc_len = torch.randint(4, SEQ + 1, (BATCH, 1), generator=g)
        code_mask, doc_mask = pos < code_len, pos < doc_len
        code = torch.randint(4, VOCAB, (BATCH, SEQ), generator=g).masked_fill(~code_mask, PAD_ID)
        doc = torch.randint(4, VOCAB, (BATCH, SEQ), generator=g).masked_fill(~doc_mask, PAD_ID)
        roles = torch.randint(0, 16, (BATCH, SEQ), generator=g).masked_fill(~code_mask, IGNORE)
        out.append((code, code_mask, roles, doc, doc_mask))
    return out


@dataclass
class PrebuiltBatches:
    """Duck-types EpochBatches (per_epoch, batch_size, iterate) over ready tensors: no collate cost."""

    items: list
    batch_size: int = BATCH

    @property
    def per_epoch(self) -> int:
        return len(self.items)

    def iterate(self, epoch: int, start: int = 0):
        for b in range(start, len(self.items)):
            yield b, self.items[b]


def make_step(encoder: CnnFrameEncoder):
    """The encoder stage's training step, using the phase's own objective."""
    from voltx_phases.translator_train import encoder_losses

    def step(batch):
        out = encoder_losses(encoder, batch, DEVICE, TAU)
        loss = C_WEIGHT * out["contrastive"] + R_WEIGHT * out["role"]
        return {"loss": loss, "contrastive": out["contrastive"], "role": out["role"]}

    return step


def build(seed: int) -> tuple[CnnFrameEncoder, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    encoder = CnnFrameEncoder(vocab_size=VOCAB, max_seq_len=SEQ).to(DEVICE)
    opt = torch.optim.AdamW(encoder.parameters(), lr=LR, weight_decay=WD)
    return encoder, opt


def lr_fn(total: int):
    warmup = max(1, int(total * WARMUP_FRACTION))
    return lambda s: warmup_cosine(s, max_lr=LR, warmup=warmup, total=total, min_ratio=MIN_LR_RATIO)


# --- the two loops ----------------------------------------------------------------------------


def run_bare(batches: list, workdir: Path) -> dict:
    encoder, opt = build(SEED)
    step_fn, lr_at = make_step(encoder), lr_fn(len(batches))
    sink = io.StringIO()
    encoder.train()
    c0, t0 = time.process_time(), time.perf_counter()
    for it, batch in enumerate(batches):
        lr = lr_at(it)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = step_fn(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), CLIP)
        opt.step()
        if (it + 1) % LOG_EVERY == 0 or it == 0:
            print(f"iter {it + 1}: loss {loss.item():.4f}, lr {lr:.2e}", file=sink)
    # end of epoch: save the state, as fit does (but plain safetensors, no fsync/atomic commit)
    from safetensors.torch import save_file

    t_save = time.perf_counter()
    ckpt = workdir / f"bare-{time.monotonic_ns()}"
    ckpt.mkdir()
    save_file({k: v.detach().contiguous() for k, v in encoder.state_dict().items()}, str(ckpt / "model.safetensors"))
    sd = opt.state_dict()
    optim = {f"{i}/{k}": v.contiguous() for i, s in sd["state"].items() for k, v in s.items() if isinstance(v, torch.Tensor)}
    save_file(optim, str(ckpt / "optimizer.safetensors"))
    (ckpt / "state.json").write_text(json.dumps({"iter": len(batches), "param_groups": sd["param_groups"]}, default=str))
    t1, c1 = time.perf_counter(), time.process_time()
    return {"seconds": t1 - t0, "cpu_seconds": c1 - c0, "checkpoint_seconds": t1 - t_save, "weights": encoder.state_dict()}


def run_voltx(batches: list, workdir: Path, plugins) -> dict:
    cfg = build_config({})
    cfg.run.log_every = LOG_EVERY
    cfg.run.checkpoint_every = 0  # checkpoint only at the end of the epoch
    spec = PhaseSpec(name="bench", summary="loop overhead benchmark", runner=lambda ctx: None, config_class=type(cfg.run))
    writer = RunWriter.create(workdir / "runs", "bench", config_toml="", overrides=[], preset=None, argv=[])
    reporter = Reporter(stream=io.StringIO(), mode="plain", copy=writer.stdout)
    hub = MetricsHub(writer, plugins, cfg.run.alert_rules, reporter.line)
    ctx = RunContext(config=cfg, phase=spec, run=writer, device=DEVICE, hub=hub, reporter=reporter, stop=StopFlag())
    encoder, opt = build(SEED)
    stage = Stage(
        name="encoder", model=encoder, optimizer=opt, batches=PrebuiltBatches(batches), epochs=1,
        step=make_step(encoder), lr_at=lr_fn(len(batches)), grad_clip=CLIP,
    )
    c0, t0 = time.process_time(), time.perf_counter()
    fit(ctx, stage)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    writer.close("finished", 0)
    events = read_jsonl(writer.paths.events).records
    ckpt = sum(e.get("seconds", 0.0) for e in events if e.get("kind") == "checkpoint")
    n_metrics = len(read_jsonl(writer.paths.metrics).records)
    return {"seconds": seconds, "cpu_seconds": cpu, "checkpoint_seconds": ckpt, "weights": encoder.state_dict(), "metrics_records": n_metrics}


# --- driver -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20 steps x 2 pairs (about a minute on a busy 2-core box)")
    ap.add_argument("--steps", type=int, help="optimizer steps per run (default 100, quick 20)")
    ap.add_argument("--repeats", type=int, help="(bare, voltx) pairs (default 4, quick 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    args = ap.parse_args()
    steps = args.steps or (20 if args.quick else 100)
    repeats = args.repeats or (2 if args.quick else 4)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_config({})
    configure_determinism(cfg.hardware, DEVICE)  # what execute() does for every run; applies to both loops
    plugins = load_plugins()
    batches = make_batches(steps)
    warm = batches[: min(3, steps)]
    print(f"loop overhead: CnnFrameEncoder vocab {VOCAB}, seq {SEQ}, batch {BATCH}; {steps} steps/run, {repeats} pairs, "
          f"torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="voltx-bench-loop-") as tmp:
        work = Path(tmp)
        run_bare(warm, work)
        run_voltx(warm, work, plugins)
        rows = []
        for r in range(repeats):
            bare = run_bare(batches, work)
            loop = run_voltx(batches, work, plugins)
            same = all(torch.equal(bare["weights"][k], loop["weights"][k]) for k in bare["weights"])
            b_sps, l_sps = steps * BATCH / bare["seconds"], steps * BATCH / loop["seconds"]
            b_sps_nc = steps * BATCH / (bare["seconds"] - bare["checkpoint_seconds"])
            l_sps_nc = steps * BATCH / (loop["seconds"] - loop["checkpoint_seconds"])
            rows.append({
                "bare_sps": b_sps, "voltx_sps": l_sps, "ratio": l_sps / b_sps,
                "ratio_excl_checkpoint": l_sps_nc / b_sps_nc, "cpu_ratio": bare["cpu_seconds"] / loop["cpu_seconds"],
                "bare_ckpt_s": bare["checkpoint_seconds"], "voltx_ckpt_s": loop["checkpoint_seconds"],
                "identical_weights": same, "metrics_records": loop["metrics_records"],
            })
            print(f"  pair {r + 1}: bare {b_sps:7.1f} samples/s ({bare['seconds']:.2f}s, ckpt {bare['checkpoint_seconds']:.3f}s) | "
                  f"voltx {l_sps:7.1f} samples/s ({loop['seconds']:.2f}s, ckpt {loop['checkpoint_seconds']:.3f}s) | "
                  f"ratio {l_sps / b_sps:.4f} | excl. ckpt {l_sps_nc / b_sps_nc:.4f} | same weights {same}", flush=True)

    ratio = median([r["ratio"] for r in rows])
    ratio_nc = median([r["ratio_excl_checkpoint"] for r in rows])
    bare_sps = median([r["bare_sps"] for r in rows])
    voltx_sps = median([r["voltx_sps"] for r in rows])
    cpu_ratio = median([r["cpu_ratio"] for r in rows])
    best_ratio = max(r["voltx_sps"] for r in rows) / max(r["bare_sps"] for r in rows)
    all_same = all(r["identical_weights"] for r in rows)
    verdict = "meets" if ratio >= 0.97 else "BELOW"
    print(f"bare PyTorch loop: {bare_sps:.1f} samples/s (median) | voltx fit: {voltx_sps:.1f} samples/s (median)")
    print(f"checkpoint included in both timings; with both checkpoints subtracted the median ratio is {ratio_nc:.4f}")
    print(f"CPU-time ratio bare/voltx (process CPU seconds, all threads incl. the log writer; less sensitive to a busy "
          f"machine than wall clock): {cpu_ratio:.4f}")
    print(f"best-of ratio (fastest voltx run / fastest bare run, timeit-style): {best_ratio:.4f}")
    if not all_same:
        print("WARNING: final weights differ between the two loops (they should train identically)")
    print(f"RESULT loop/bare samples/s ratio = {ratio:.4f} (median of {repeats} alternated pairs; goal >= 0.97: {verdict})")
    emit_json("loop_overhead", {
        "steps": steps, "repeats": repeats, "batch": BATCH, "seq": SEQ, "vocab": VOCAB,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "bare_samples_per_s": round(bare_sps, 2), "voltx_samples_per_s": round(voltx_sps, 2),
        "ratio": round(ratio, 4), "ratio_excl_checkpoint": round(ratio_nc, 4),
        "cpu_time_ratio": round(cpu_ratio, 4), "best_of_ratio": round(best_ratio, 4), "goal": 0.97,
        "identical_weights": all_same,
        "pairs": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
