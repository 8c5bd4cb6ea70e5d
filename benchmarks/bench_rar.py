"""RAR latency and throughput: the batched ``voltx.engine.rar`` vs a per-slot Python loop.

Workload: frames of 16 active unit-norm slots (dim 256), the small ``Vfn`` (525,568
params) and ``SlotAttention``, the original's defaults except epsilon = 0 so no slot
converges early and every frame runs exactly 50 iterations (fixed work on both sides).
No noise, no bias, no ghosts.

* voltx: ``rar(slots [B, 16, 256], ...)`` -- one VFN call and one attention call per
  iteration for the whole batch, under ``torch.no_grad``.
* reference: the original's structure (``rar.rs``) in PyTorch: frame by frame, a Python
  loop over slots for the VFN (one ``[1, 256]`` call per slot), per-slot q/k/v
  projections, per-query softmax over the active keys, per-slot refine and convergence
  test.  Same weights and inputs; the script checks both give the same slots.

Figures: one-frame latency (B = 1) and throughput at B = 64 and 256 as ms per frame.
The reference is frame-by-frame, so its ms/frame does not depend on B; it is timed on a
few frames (``--ref-frames``) and the ratio is reference ms/frame / voltx ms/frame.
Goal: < 30 ms per frame batched (the original reports 288 ms per frame on CPU).

    python benchmarks/bench_rar.py            # 5 repeats
    python benchmarks/bench_rar.py --quick    # 2 repeats, smaller reference sample
    python benchmarks/bench_rar.py --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from _common import emit_json, median
from voltx.engine.attention import SlotAttention
from voltx.engine.rar import RarConfig, rar
from voltx.engine.vfn import Vfn

SLOTS, DIM = 16, 256
CONFIG = RarConfig(epsilon=0.0, max_iterations=50)


@torch.no_grad()
def reference_rar(slots: torch.Tensor, active: torch.Tensor, vfn: Vfn, attn: SlotAttention,
                  config: RarConfig) -> torch.Tensor:
    """One frame ``[16, 256]``, slot by slot, as the original's CPU RAR does it."""
    states = [slots[i].clone() for i in range(SLOTS)]
    live = [i for i in range(SLOTS) if active[i]]
    converged = [not bool(active[i]) for i in range(SLOTS)]
    for _ in range(config.max_iterations):
        if all(converged):
            break
        snapshot = [s.clone() for s in states]  # Jacobi: everyone sees the same states
        drift = {i: vfn(snapshot[i].unsqueeze(0))[0] for i in range(SLOTS) if not converged[i]}
        keys = {j: attn.wk(snapshot[j]) for j in live}
        values = {j: attn.wv(snapshot[j]) for j in live}
        for i in range(SLOTS):
            if converged[i]:
                continue
            q = attn.wq(snapshot[i])
            scores = torch.stack([q.dot(keys[j]) * attn.scale for j in live])
            weights = torch.softmax(scores, dim=0)
            msg = sum(w * values[j] for w, j in zip(weights, live))
            proposal = snapshot[i] + config.dt * (drift[i] + config.beta * msg)
            norm = proposal.norm()
            if norm < 1e-10:
                converged[i] = True
                continue
            new = proposal / norm
            if (new - snapshot[i]).norm() < config.epsilon:
                converged[i] = True
            states[i] = new
    return torch.stack(states)


def frames(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(batch, SLOTS, DIM, generator=g), dim=-1), torch.ones(batch, SLOTS, dtype=torch.bool)


def time_voltx(batch: int, repeats: int, vfn: Vfn, attn: SlotAttention) -> float:
    """Median ms per frame over ``repeats`` runs (after one warm-up)."""
    slots, active = frames(batch, seed=batch)
    rar(slots, active, vfn, attn, RarConfig(epsilon=0.0, max_iterations=2))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = rar(slots, active, vfn, attn, CONFIG)
        runs.append((time.perf_counter() - start) * 1e3 / batch)
        assert int(out.total_iterations.min()) == CONFIG.max_iterations  # no early exit
    return median(runs)


def time_reference(count: int, repeats: int, vfn: Vfn, attn: SlotAttention) -> float:
    slots, active = frames(count, seed=7)
    reference_rar(slots[0], active[0], vfn, attn, RarConfig(epsilon=0.0, max_iterations=2))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in range(count):
            reference_rar(slots[b], active[b], vfn, attn, CONFIG)
        runs.append((time.perf_counter() - start) * 1e3 / count)
    return median(runs)


def check_agreement(vfn: Vfn, attn: SlotAttention) -> float:
    """Max |voltx - reference| over 3 frames with some inactive slots and default epsilon."""
    slots, active = frames(3, seed=11)
    active[1, 10:] = False
    config = RarConfig()
    batched = rar(slots, active, vfn, attn, config).slots
    return max((batched[b] - reference_rar(slots[b], active[b], vfn, attn, config)).abs().max().item()
               for b in range(3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 repeats, 2 reference frames")
    ap.add_argument("--repeats", type=int, help="timed runs per size (default 5, quick 2)")
    ap.add_argument("--ref-frames", type=int, help="frames the reference is timed on (default 4, quick 2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: steady figures on a shared machine)")
    args = ap.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    ref_frames = args.ref_frames or (2 if args.quick else 4)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vfn, attn = Vfn().eval(), SlotAttention().eval()

    diff = check_agreement(vfn, attn)
    print(f"agreement: max |batched - per-slot reference| = {diff:.2e} (threads {torch.get_num_threads()})")
    ref = time_reference(ref_frames, repeats, vfn, attn)
    print(f"reference (per-slot loop): {ref:8.2f} ms/frame  ({ref_frames} frames x {repeats})")
    figures = {"threads": torch.get_num_threads(), "iterations": CONFIG.max_iterations, "repeats": repeats,
               "reference_ms_per_frame": round(ref, 3), "max_abs_diff": diff}
    for batch in (1, 64, 256):
        ms = time_voltx(batch, repeats, vfn, attn)
        figures[f"voltx_b{batch}_ms_per_frame"] = round(ms, 3)
        figures[f"speedup_b{batch}"] = round(ref / ms, 2)
        print(f"voltx batch {batch:3d}:        {ms:8.2f} ms/frame   speed-up x{ref / ms:6.1f}")
    best = min(figures["voltx_b64_ms_per_frame"], figures["voltx_b256_ms_per_frame"])
    print(f"RESULT rar {figures['voltx_b1_ms_per_frame']:.1f} ms one frame, {best:.1f} ms/frame batched "
          f"(goal < 30; original 288) vs per-slot reference {ref:.1f} ms/frame: x{ref / best:.1f}")
    emit_json("rar", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
