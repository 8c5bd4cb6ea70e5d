"""Data-parallel training on the CPU with gloo: 1 vs 2 processes on the same global batch, and
the cost of the all-reduced stop check.

Each process trains the same MLP (seeded identically) on its share of each global batch with
the collectives the shared loop uses (:class:`voltx.train.distributed.Job`): the stop check
(``Job.any``, one gloo all-reduce of one int a step), the bucketed gradient average and AdamW.
The stop check's cost is timed back to back after training (inside a step it would also
absorb the time one rank waits for the other, which the gradient all-reduce pays anyway).
One process runs the same steps with no collective (the single-process loop). Figures:
global samples/s of each, their ratio, and the stop check's median time as a share of a step
(goal: under 1%). Processes are started with torch.multiprocessing (the loop's collectives do
not depend on how the processes were launched).

    python benchmarks/bench_distributed.py [--quick] [--steps N] [--batch B] [--hidden H]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit_json  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(rank: int, world: int, args, out) -> None:
    import torch
    import torch.distributed as dist

    from voltx.train.distributed import Job

    torch.set_num_threads(args.threads)
    job = None
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
        job = Job(rank, world, rank, "gloo", dist.group.WORLD)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(args.features, args.hidden), torch.nn.GELU(),
                                torch.nn.Linear(args.hidden, args.hidden), torch.nn.GELU(), torch.nn.Linear(args.hidden, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.randn(args.batch * 8, args.features, generator=torch.Generator().manual_seed(1))
    target = data.sum(dim=1, keepdim=True)
    share = args.batch // world
    checks: list[float] = []

    def step(i: int) -> None:
        if job is not None:
            job.any(False)  # the loop's stop check, as fit runs it
        lo = (i % 8) * args.batch + rank * share
        loss = torch.nn.functional.mse_loss(model(data[lo: lo + share]), target[lo: lo + share])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if job is not None:
            job.average_gradients(model)
        opt.step()

    for i in range(5):  # warm-up
        step(i)
    if job is not None:
        dist.barrier()
    checks.clear()
    started = time.perf_counter()
    for i in range(args.steps):
        step(i)
    seconds = time.perf_counter() - started
    if job is not None:  # the check's own cost: back to back, so no rank waits for a slower one
        for _ in range(args.steps * 3):
            t0 = time.perf_counter()
            job.any(False)
            checks.append(time.perf_counter() - t0)
    if rank == 0:
        out.put({"seconds": seconds, "check_median_s": statistics.median(checks) if checks else 0.0,
                 "params": sum(p.numel() for p in model.parameters())})
    if job is not None:
        job.close()


def measure(world: int, args) -> dict:
    import torch.multiprocessing as mp

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_train, args=(r, world, args, out)) for r in range(world)]
    for p in procs:
        p.start()
    result = out.get(timeout=600)
    for p in procs:
        p.join()
    result["samples_per_s"] = args.steps * args.batch / result["seconds"]
    result["step_s"] = result["seconds"] / args.steps
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (about a minute on 2 busy cores)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256, help="global batch, split across the processes")
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    if args.quick:
        args.steps = 60
    one = measure(1, args)
    two = measure(2, args)
    share = two["check_median_s"] / two["step_s"]
    print(f"model: {one['params']:,} parameters, global batch {args.batch}, {args.steps} steps, {args.threads} thread(s) a process")
    print(f"1 process : {one['samples_per_s']:9.1f} samples/s ({one['step_s'] * 1e3:.2f} ms/step)")
    print(f"2 processes (gloo): {two['samples_per_s']:9.1f} samples/s ({two['step_s'] * 1e3:.2f} ms/step)")
    print(f"stop check (all-reduce of one int): {two['check_median_s'] * 1e6:.1f} us median = {share:.2%} of a step (goal < 1%)")
    print(f"RESULT 2-process / 1-process samples/s = {two['samples_per_s'] / one['samples_per_s']:.2f}; stop check = {share:.2%} of a step")
    emit_json("distributed", {"steps": args.steps, "batch": args.batch, "params": one["params"], "threads": args.threads,
                              "one_samples_per_s": round(one["samples_per_s"], 1), "two_samples_per_s": round(two["samples_per_s"], 1),
                              "ratio": round(two["samples_per_s"] / one["samples_per_s"], 3),
                              "stop_check_us": round(two["check_median_s"] * 1e6, 1), "stop_check_share": round(share, 5)})


if __name__ == "__main__":
    main()
