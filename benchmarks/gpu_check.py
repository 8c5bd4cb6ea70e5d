"""GPU check: what voltx does on this machine's first GPU, in one table, in under 8 minutes.

    python benchmarks/gpu_check.py            # about 5 minutes on one H100
    python benchmarks/gpu_check.py --quick    # fewer steps, about 2 minutes

Rows, each measured here and now:

* CUDA tests: ``pytest -m gpu tests plugins`` (every test marked ``gpu``; they skip without CUDA).
* Translator encoder at the full preset (the ``[translator.encoder]`` table of training_config.toml
  with no preset: vocab 32768, sequence 512, batch 128), fp32, on synthetic token rows padded by
  the input pipeline: samples/s through ``voltx run`` (a real run store); the original trainer did
  45 samples/s on an RTX 5090 Mobile.
* F3's ScaledVfn at F3's full preset (``[f3.presets.full]``: hidden 2048, 6 blocks, batch 32
  frames of 16 slots): steps/s of a flow-matching step at fp32 and at bf16 autocast.
* For each of those runs: mean GPU utilisation and peak VRAM (device-wide, NVML) from the run's
  own system.jsonl, sampled every 0.5 s by its telemetry sidecar.
* The same ScaledVfn under ``hardware.strategy = "fsdp"``: sharded with voltx's own
  :func:`voltx.train.sharding.shard_stage` (each block a unit, a ``MixedPrecisionPolicy`` at bf16) in
  a process group of one (NCCL), 2 micro-batches a step as ``grad_accum = 2`` runs them (one
  reduce-scatter per step); steps/s at fp32 and bf16 and the allocator's peak memory
  (``torch.cuda.max_memory_allocated``). One process: what it shows is FSDP2's per-step cost
  (all-gathers, reduce-scatter, mixed precision) on the card, not scaling across GPUs.
* The loop's overhead: ``benchmarks/bench_loop_overhead.py``'s two loops (voltx ``fit`` and a bare
  PyTorch loop, the same batches) on the GPU; voltx samples/s over bare samples/s.

The last row is the whole check's wall time (the goal: under 5 minutes on one H100).

Without a CUDA device it says so and exits 0 (nothing to check; the CPU figures are in the README).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORIGINAL_SAMPLES_PER_S = 45.0  # the original's encoder on an RTX 5090 Mobile (seed report)


@dataclass
class GpuCheckConfig:
    workload: str = "translator"
    """translator (CnnFrameEncoder, contrastive + role step) or vfn (ScaledVfn, flow matching)."""
    steps: int = 40
    batch_size: int = 128
    seq_len: int = 512
    vocab: int = 32768
    hidden: int = 2048
    blocks: int = 6
    time_freqs: int = 64


def _translator(ctx, cfg):
    import torch

    from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
    from voltx_phases.translator_train import collate, encoder_losses

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(cfg.seq_len // 4, cfg.seq_len + 1, (cfg.steps * cfg.batch_size, 2), generator=g).tolist()
    items = [(torch.randint(4, cfg.vocab, (c,), generator=g).tolist(), [0] * c, torch.randint(4, cfg.vocab, (d,), generator=g).tolist())
             for c, d in lengths]
    encoder = CnnFrameEncoder(vocab_size=cfg.vocab, max_seq_len=cfg.seq_len).to(ctx.device)

    def step(batch):
        out = encoder_losses(encoder, batch, ctx.device, 0.07)
        return {"loss": 0.8 * out["contrastive"] + 0.2 * out["role"]}

    return encoder, items, collate, step


def _vfn(ctx, cfg):
    import torch

    from voltx.engine.vfn import ScaledVfn

    g = torch.Generator().manual_seed(0)
    items = list(torch.randn(cfg.steps * cfg.batch_size, 16, 256, generator=g))
    vfn = ScaledVfn(hidden=cfg.hidden, blocks=cfg.blocks, time_freqs=cfg.time_freqs).to(ctx.device)

    def step(target):
        noise = torch.randn_like(target)
        t = torch.rand(target.shape[:2], device=target.device)
        moving = noise + t.unsqueeze(-1) * (target - noise)
        return {"loss": torch.nn.functional.mse_loss(vfn(moving, t).float(), target - noise)}

    return vfn, items, torch.stack, step


def run_workload(ctx) -> None:
    from voltx.train.kit import Hyper, train_stage

    cfg = ctx.settings
    model, items, collate, step = (_translator if cfg.workload == "translator" else _vfn)(ctx, cfg)
    hyper = Hyper(epochs=1, batch_size=cfg.batch_size, lr=3e-4, warmup=5, min_lr_ratio=0.1, weight_decay=0.01, grad_clip=1.0)
    train_stage(ctx, cfg.workload, model, items, collate, step, hyper, title=f"gpu check: {cfg.workload}", background_collate=True)


def _register():
    from voltx import hookimpl
    from voltx.plugin_specs import PhaseSpec

    class Plugin:
        @hookimpl
        def register_phases(self, register):
            register(PhaseSpec("gpucheck", "benchmarks/gpu_check.py workloads", run_workload, GpuCheckConfig))

    return Plugin()


def measured_run(runs: Path, plugins, overrides: list[str]) -> dict:
    """One ``voltx run`` of a workload; its speed from metrics.jsonl, GPU figures from system.jsonl."""
    from voltx.runs.layout import list_run_dirs
    from voltx.train.runner import RunRequest, execute

    before = set(list_run_dirs(runs)) if runs.exists() else set()
    code = execute(RunRequest(phase="gpucheck", overrides=("hardware.device=cuda", "run.log_every=5", "run.telemetry_interval=0.5",
                                                              *overrides), runs_dir=str(runs), progress="plain"),
                   plugins=plugins, restore_signals=True)
    (run_dir,) = set(list_run_dirs(runs)) - before
    if code != 0:
        return {"error": f"exit {code}; see {run_dir}/stdout.log"}
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steady = [m for m in metrics if m["stage_step"] > 10] or metrics  # after warm-up (cuDNN autotune, allocator)
    sampled = run_dir / "system.jsonl"  # absent when the run ended before the sidecar's first sample
    system = [json.loads(line) for line in sampled.read_text().splitlines() if line.strip()] if sampled.exists() else []
    gpus = [s["gpus"][0] for s in system if s.get("gpus")]
    utils = [g["util"] for g in gpus if g.get("util") is not None]
    used = [g["mem_used"] for g in gpus if g.get("mem_used") is not None]
    return {"samples_per_s": statistics.median(m["samples_per_sec"] for m in steady),
            "steps_per_s": statistics.median(m["steps_per_sec"] for m in steady),
            "gpu_util": statistics.mean(utils) if utils else None, "peak_vram_gib": max(used) / 2**30 if used else None,
            "run": str(run_dir)}


def fsdp_speed(device: str, precision: str, hidden: int, blocks: int, time_freqs: int, batch: int, steps: int, warmup: int = 5) -> dict:
    """Steps/s and peak memory of F3's flow-matching step on a ScaledVfn sharded by FSDP2 in a process
    group of one (NCCL on CUDA, gloo on the CPU), as voltx's loop runs it: 2 micro-batches a step."""
    import torch
    import torch.distributed as dist

    from voltx.engine.vfn import ScaledVfn
    from voltx.train.batches import MicroBatches
    from voltx.train.precision import DTYPES, Precision
    from voltx.train.sharding import shard_stage

    dev = torch.device(device)
    with tempfile.TemporaryDirectory(prefix="voltx-gpu-check-") as tmp:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", init_method=f"file://{tmp}/store", rank=0, world_size=1)
        try:
            torch.manual_seed(0)
            model = torch.nn.ModuleDict({"vfn": ScaledVfn(hidden=hidden, blocks=blocks, time_freqs=time_freqs).to(dev)})
            opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
            shard_stage(model, opt, ("vfn",), DTYPES.get(precision))
            amp = Precision(precision, dev, [model["vfn"]])
            half = batch // 2
            parts = MicroBatches([torch.randn(half, 16, 256, device=dev) for _ in range(2)], [0.5, 0.5])

            def step(target):
                noise = torch.randn_like(target)
                t = torch.rand(target.shape[:2], device=dev)
                moving = noise + t.unsqueeze(-1) * (target - noise)
                return {"loss": torch.nn.functional.mse_loss(model["vfn"](moving, t).float(), target - noise)}

            def train(n: int) -> None:
                for _ in range(n):
                    opt.zero_grad(set_to_none=True)
                    amp.forward_backward(step, parts)
                    amp.unscale(opt)
                    amp.step(opt)

            train(warmup)  # allocator, cuBLAS handles, NCCL communicators
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
                torch.cuda.reset_peak_memory_stats(dev)
            started = time.perf_counter()
            train(steps)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - started
            peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
            return {"steps_per_s": steps / seconds, "peak_gib": peak}
        finally:
            dist.destroy_process_group()


def fsdp_rows(f3, steps: int) -> list[tuple[str, str, str]]:
    rows, speed = [], {}
    for precision in ("fp32", "bf16"):
        label = f"F3 ScaledVfn under fsdp (1 process, NCCL, 2 micro-batches), {precision}"
        try:
            speed[precision] = fsdp_speed("cuda", precision, f3.vfn_hidden, f3.vfn_blocks, f3.time_embed_freqs, f3.batch_size, steps)
        except Exception as exc:  # one failing row must not lose the others
            rows.append((label, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}", ""))
            continue
        got = speed[precision]
        ratio = f"bf16/fp32 = {got['steps_per_s'] / speed['fp32']['steps_per_s']:.2f}x" if precision == "bf16" and "fp32" in speed else ""
        rows += [(label, fmt(got["steps_per_s"], "steps/s"), ratio), ("  peak memory (torch.cuda.max_memory_allocated)", fmt(got["peak_gib"], "GiB", 2), "")]
    return rows


def cuda_tests(timeout: int) -> str:
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests", "plugins"],
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    summary = re.findall(r"(\d+ (?:passed|failed|skipped|error|errors|deselected))", done.stdout)
    return f"{', '.join(s for s in summary if 'deselected' not in s) or done.stdout.strip()[-200:]} ({time.perf_counter() - started:.0f} s)"


def loop_overhead(steps: int, pairs: int, device: str = "cuda") -> str:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_loop_overhead as bench

    bench.DEVICE = torch.device(device)
    from voltx.plugins import load_plugins

    plugins = load_plugins()
    batches = bench.make_batches(steps)
    ratios = []
    with tempfile.TemporaryDirectory(prefix="voltx-gpu-check-") as tmp:
        bench.run_bare(batches[:5], Path(tmp))  # warm-up: CUDA context, cuDNN, allocator
        bench.run_voltx(batches[:5], Path(tmp), plugins)
        for _ in range(pairs):
            bare, loop = bench.run_bare(batches, Path(tmp)), bench.run_voltx(batches, Path(tmp), plugins)
            ratios.append((bare["seconds"] - bare["checkpoint_seconds"]) / (loop["seconds"] - loop["checkpoint_seconds"]))  # = samples/s ratio
    return f"{statistics.median(ratios):.3f} (median of {pairs} pairs, {steps} steps each, checkpoints excluded)"


def fmt(value, unit: str, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} {unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (about 2 minutes)")
    ap.add_argument("--skip-tests", action="store_true", help="leave out the CUDA tests row")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
              "nothing to check. Run it on a GPU machine; the README has the CPU figures.")
        return 0
    started = time.perf_counter()
    from voltx.config import default_config_file, load_config, resolve_for_phase
    from voltx.plugins import load_plugins

    config = load_config(default_config_file())
    enc = resolve_for_phase(config, "translator").phases["translator"].encoder
    f3 = resolve_for_phase(config, "f3", preset="full").phases["f3"]
    steps = 20 if args.quick else 60
    plugins = load_plugins(extra=[("gpucheck", _register())], refresh=True)
    name = torch.cuda.get_device_name(0)
    rows = [("GPU", f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}", "")]
    if not args.skip_tests:
        rows.append(("CUDA tests (pytest -m gpu tests plugins)", cuda_tests(150), ""))
    with tempfile.TemporaryDirectory(prefix="voltx-gpu-check-") as tmp:
        runs = Path(tmp) / "runs"
        tr = measured_run(runs, plugins, ["workload=translator", f"steps={steps}", f"batch_size={enc.batch_size}",
                                          f"seq_len={enc.max_seq_len}", f"vocab={config.phases['translator'].tokenizer.vocab_size}"])
        label = f"translator encoder, full preset (batch {enc.batch_size}, seq {enc.max_seq_len}), fp32"
        if "error" in tr:
            rows.append((label, tr["error"], ""))
        else:
            rows += [(label, fmt(tr["samples_per_s"], "samples/s"),
                      f"original: {ORIGINAL_SAMPLES_PER_S:g} samples/s on an RTX 5090 Mobile ({tr['samples_per_s'] / ORIGINAL_SAMPLES_PER_S:.1f}x)"),
                     ("  GPU util / peak VRAM (system.jsonl)", f"{fmt(tr['gpu_util'], '%', 0)} / {fmt(tr['peak_vram_gib'], 'GiB')}", "")]
        vfn = {}
        for precision in ("fp32", "bf16"):
            vfn[precision] = measured_run(runs, plugins, ["workload=vfn", f"steps={steps * 3}", f"batch_size={f3.batch_size}",
                                                          f"hidden={f3.vfn_hidden}", f"blocks={f3.vfn_blocks}",
                                                          f"time_freqs={f3.time_embed_freqs}", f"hardware.precision={precision}"])
            label = f"F3 ScaledVfn, full preset (hidden {f3.vfn_hidden}, {f3.vfn_blocks} blocks, batch {f3.batch_size}), {precision}"
            got = vfn[precision]
            if "error" in got:
                rows.append((label, got["error"], ""))
                continue
            ratio = f"bf16/fp32 = {got['steps_per_s'] / vfn['fp32']['steps_per_s']:.2f}x" if precision == "bf16" and "error" not in vfn["fp32"] else ""
            rows += [(label, fmt(got["steps_per_s"], "steps/s"), ratio),
                     ("  GPU util / peak VRAM (system.jsonl)", f"{fmt(got['gpu_util'], '%', 0)} / {fmt(got['peak_vram_gib'], 'GiB')}", "")]
    rows += fsdp_rows(f3, steps // 2)
    rows.append(("loop overhead: voltx fit / bare PyTorch loop, GPU", loop_overhead(40 if args.quick else 100, 2 if args.quick else 3),
                 "goal >= 0.97"))
    rows.append(("whole check, wall time", f"{time.perf_counter() - started:.0f} s", "goal < 300 s on one H100"))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print()
    for check, value, note in rows:
        print(f"{check:<{width}} | {value:<{value_width}} | {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
