"""Checks before step 1: disk for the checkpoints, memory for the model, data present.

Each failure is one paragraph saying what is short, by how much, and what to do.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psutil

from voltx.errors import PreflightError

GiB = 1024**3


def check_resources(run_dir: Path, param_count: int, keep_checkpoints: int, device) -> dict[str, float]:
    """Raise PreflightError when disk or memory is clearly insufficient; return the figures."""
    weights = param_count * 4
    # model + two Adam moments per checkpoint, kept `keep` times plus one being written
    need_disk = 3 * weights * (keep_checkpoints + 1) + 64 * 1024**2
    free_disk = shutil.disk_usage(run_dir).free
    if free_disk < need_disk:
        raise PreflightError(
            f"not enough disk for checkpoints under {run_dir}: {free_disk / GiB:.2f} GiB free, about "
            f"{need_disk / GiB:.2f} GiB needed ({param_count:,} parameters, {keep_checkpoints} kept + 1 in flight). "
            "Free space, lower [run].keep_checkpoints, or put runs elsewhere with --runs-dir."
        )
    # weights, grads, two Adam moments; activations vary, so only a floor is enforced
    need_mem = 4 * weights
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        free_mem, _ = torch.cuda.mem_get_info(device)
        where = f"GPU {device}"
    else:
        free_mem = psutil.virtual_memory().available
        where = "host RAM"
    if free_mem < need_mem:
        raise PreflightError(
            f"not enough memory on {where}: {free_mem / GiB:.2f} GiB free, at least {need_mem / GiB:.2f} GiB "
            f"needed for {param_count:,} parameters with AdamW. Use a smaller model or batch, or a larger machine."
        )
    return {"free_disk_gb": free_disk / GiB, "need_disk_gb": need_disk / GiB, "free_mem_gb": free_mem / GiB}
