"""Crash-safe checkpoints: safetensors + JSON, never pickle.

Commit protocol: write every file into ``checkpoints/.tmp-step-N-<pid>/``, fsync the
files and the directory, rename it to ``step-N``, then write ``COMMITTED`` last (fsynced).
A process killed at any point leaves either a ``.tmp-*`` directory (ignored and cleaned
later) or a ``step-N`` without ``COMMITTED`` (ignored): the previous committed checkpoint
stays the one a resume loads. Older checkpoints are pruned only after a new one commits.
``COMMITTED`` lists every file with its size, so a checkpoint damaged after its commit
(truncated by a full disk or a bad copy) is recognised before it is loaded and a resume
falls back to the newest intact one. A write that fails (disk full) removes its temp
directory and is a CantCreateError (exit 73); the previous checkpoint stays.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voltx.artifacts import free_space, fsync_path, save_tensors
from voltx.errors import CantCreateError, DataError

COMMITTED = "COMMITTED"
DAMAGED = "DAMAGED"  # replaces COMMITTED on a checkpoint found damaged: never loaded, pruned later


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


def save_checkpoint(root: Path, step: int, tensor_files: dict[str, dict], state: dict[str, Any], keep: int = 2) -> Path:
    """Write a checkpoint atomically and prune older committed ones down to ``keep``."""
    tmp = root / f".tmp-step-{step}-{os.getpid()}"
    final = root / f"step-{step}"
    try:
        _write_and_commit(root, tmp, final, step, tensor_files, state)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if final.is_dir() and not (final / COMMITTED).exists():
            shutil.rmtree(final, ignore_errors=True)
        raise CantCreateError(_write_failed(root, step, exc)) from None
    prune(root, keep)
    return final


def _write_and_commit(root: Path, tmp: Path, final: Path, step: int, tensor_files: dict[str, dict], state: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for name, tensors in tensor_files.items():
        save_tensors(tensors, tmp / f"{name}.safetensors", {"step": str(step)})
        fsync_path(tmp / f"{name}.safetensors")
    (tmp / "state.json").write_text(json.dumps({"step": step, **state}, indent=1), encoding="utf-8")
    fsync_path(tmp / "state.json")
    fsync_path(tmp)
    files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
    if final.exists():  # the same step saved again after a resume: replace it
        trash = root / f".old-step-{step}-{os.getpid()}"
        final.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    tmp.rename(final)
    fsync_path(root)
    marker = final / COMMITTED
    marker.write_text(json.dumps({"step": step, "time": time.time(), "files": files}), encoding="utf-8")
    fsync_path(marker)
    fsync_path(final)


def _write_failed(root: Path, step: int, exc: OSError) -> str:
    """The message of a checkpoint write that failed: which path, the free space, what to do."""
    where = exc.filename or root
    previous = committed(root)
    kept = f"the previous checkpoint {previous[-1]} is kept" if previous else "no earlier checkpoint exists"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = ("Free space there (or lower run.keep_checkpoints, or put the runs root on a larger disk with "
                "--runs-dir / VOLTX_RUNS_DIR), then resume the run with --resume")
    else:
        todo = "Make the run directory writable, then resume the run with --resume"
    return (f"cannot write checkpoint step {step}: {exc.strerror or exc} writing {where}{free_space(root)}; "
            f"the partial checkpoint was removed and {kept}. {todo}.")


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


def damage(path: Path) -> str | None:
    """Why a committed checkpoint cannot be loaded, or None when it looks intact.

    Cheap (no tensor is read): state.json parses, each file the commit marker lists has the
    size it had when committed, and each safetensors header describes exactly the bytes its
    file holds (a truncated file fails this)."""
    try:
        marker = json.loads((path / COMMITTED).read_text(encoding="utf-8") or "{}")
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        int(state["step"])
        listed = marker.get("files") if isinstance(marker, dict) else None
        for name, size in (listed or {}).items():
            actual = (path / name).stat().st_size
            if actual != size:
                return f"{name} has {actual} bytes, {size} when it was committed"
        for file in sorted(path.glob("*.safetensors")):
            problem = _safetensors_problem(file)
            if problem:
                return f"{file.name} {problem}"
    except FileNotFoundError as exc:
        return f"{Path(exc.filename or '?').name} is missing"
    except OSError as exc:
        return f"{Path(exc.filename or '?').name} cannot be read ({exc.strerror})"
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        return f"state.json or {COMMITTED} is not valid ({exc})"
    return None


def _safetensors_problem(file: Path) -> str | None:
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            return f"is truncated ({size} bytes, no header)"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"is truncated ({size} bytes, its header alone claims {length})"
        try:
            header = json.loads(f.read(length))
            end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return "has an unreadable header"
    if 8 + length + end != size:
        return f"is truncated ({size} bytes, its header describes {8 + length + end})"
    return None


def newest_intact(root: Path) -> tuple[Checkpoint | None, list[tuple[Path, str]]]:
    """The newest committed checkpoint that is intact, and the newer damaged ones (path, why)."""
    damaged = []
    for path in reversed(committed(root)):
        why = damage(path)
        if why is None:
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
            return Checkpoint(path, int(state["step"]), state), damaged
        damaged.append((path, why))
    return None, damaged


def set_aside(path: Path, why: str) -> None:
    """Uncommit a damaged checkpoint (its COMMITTED marker becomes DAMAGED, with the reason):
    it is never loaded again, and pruning, which counts committed ones only, never keeps it
    in place of an intact one; the next prune removes it."""
    (path / DAMAGED).write_text(json.dumps({"reason": why, "time": time.time()}), encoding="utf-8")
    (path / COMMITTED).unlink(missing_ok=True)


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
