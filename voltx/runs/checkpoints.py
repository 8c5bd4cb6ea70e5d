"""Crash-safe checkpoints: safetensors + JSON, never pickle.

Commit protocol: write every file into ``checkpoints/.tmp-step-N-<pid>/``, fsync the
files and the directory, rename it to ``step-N``, then write ``COMMITTED`` last (fsynced).
A process killed at any point leaves either a ``.tmp-*`` directory (ignored and cleaned
later) or a ``step-N`` without ``COMMITTED`` (ignored): the previous committed checkpoint
stays the one a resume loads. Older checkpoints are pruned only after a new one commits.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voltx.errors import DataError

COMMITTED = "COMMITTED"


@dataclass
class Checkpoint:
    path: Path
    step: int
    state: dict[str, Any]

    def tensors(self, name: str, device: str = "cpu") -> dict:
        """Load ``<name>.safetensors`` from the checkpoint (``model``, ``extra``)."""
        from safetensors.torch import load_file

        file = self.path / f"{name}.safetensors"
        try:
            return load_file(str(file), device=device)
        except Exception as exc:  # safetensors raises SafetensorError / OSError variants
            raise DataError(f"checkpoint file {file} cannot be read ({exc}); it may be corrupt.") from None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean_copies(tensors: dict) -> dict:
    """CPU, contiguous tensors with storage of their own (safetensors refuses shared storage:
    tied weights, views); a tensor is only copied when it needs to be."""
    out, seen = {}, set()
    for k, v in tensors.items():
        t = v.detach().contiguous().cpu()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():
            t = t.clone()
        seen.add(ptr)
        out[k] = t
    return out


def save_checkpoint(root: Path, step: int, tensor_files: dict[str, dict], state: dict[str, Any], keep: int = 2) -> Path:
    """Write a checkpoint atomically and prune older committed ones down to ``keep``."""
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, tensors in tensor_files.items():
        save_file(_clean_copies(tensors), str(tmp / f"{name}.safetensors"), metadata={"step": str(step)})
        _fsync_file(tmp / f"{name}.safetensors")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=1), encoding="utf-8")
    _fsync_file(tmp / "state.json")
    _fsync_dir(tmp)
    final = root / f"step-{step}"
    if final.exists():  # the same step saved again after a resume: replace it
        trash = root / f".old-step-{step}-{os.getpid()}"
        final.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    tmp.rename(final)
    _fsync_dir(root)
    marker = final / COMMITTED
    marker.write_text(json.dumps({"step": step, "time": time.time()}), encoding="utf-8")
    _fsync_file(marker)
    _fsync_dir(final)
    prune(root, keep)
    return final


def committed(root: Path) -> list[Path]:
    """Committed checkpoint directories, oldest first."""
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith("step-") and (p / COMMITTED).is_file():
            try:
                found.append((int(p.name[5:]), p))
            except ValueError:
                continue
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: Path) -> Checkpoint | None:
    """The newest committed checkpoint whose state.json parses (older ones as fallback)."""
    for path in reversed(committed(root)):
        try:
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        return Checkpoint(path, int(state["step"]), state)
    return None


def prune(root: Path, keep: int) -> None:
    done = committed(root)
    for old in done[: max(0, len(done) - max(keep, 1))]:
        (old / COMMITTED).unlink(missing_ok=True)  # uncommit first: a half-deleted dir is never loaded
        shutil.rmtree(old, ignore_errors=True)
    for leftover in root.iterdir():  # temp dirs of processes that died mid-write
        if leftover.name.startswith((".tmp-step-", ".old-step-")) and not leftover.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(leftover, ignore_errors=True)
        elif leftover.is_dir() and leftover.name.startswith("step-") and not (leftover / COMMITTED).exists():
            shutil.rmtree(leftover, ignore_errors=True)


def atomic_save_safetensors(tensors: dict, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write one safetensors file atomically (artifacts, per-epoch files)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(_clean_copies(tensors), str(tmp), metadata=metadata)
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
