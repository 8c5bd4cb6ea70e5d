"""Helpers of voltx-lvm's tests: tiny .npz data, run-store readers, the voltx command, and the
autouse fixture that isolates each test (imported by every test module: a conftest.py here would be
imported as ``conftest`` and shadow voltx's own tests/conftest.py when one pytest session runs both)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TINY = {"hidden": 16, "layers": 1, "heads": 2, "epochs": 2, "batch_size": 16, "warmup": 2, "lr": 3e-3,
        "run.log_every": 1}
"""Overrides that make an lvm run take well under a second of training."""


def rotating_articles(path: Path, articles: int = 40, length: int = 30, dim: int = 8, seed: int = 0) -> Path:
    """Articles whose next vector is a fixed rotation of the last plus a little noise: a dynamic a
    model can learn and copy-last / context-mean cannot follow. Saved safely (numeric arrays)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    rows, ids = [], []
    for a in range(articles):
        v = rng.normal(size=dim)
        for _ in range(length):
            v = q @ v + 0.05 * rng.normal(size=dim)
            v /= np.linalg.norm(v)
            rows.append(v.copy())
            ids.append(a)
    np.savez(path, vectors=np.asarray(rows, dtype=np.float32), article_ids=np.asarray(ids, dtype=np.int64))
    return path


def run_dirs(root: Path, phase: str = "lvm") -> list[Path]:
    return sorted(p for p in (root / phase).iterdir() if p.is_dir()) if (root / phase).is_dir() else []


def voltx_env(runs: Path) -> dict:
    return {**os.environ, **ONE_THREAD, "VOLTX_RUNS_DIR": str(runs)}


def voltx_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "voltx", *args]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VOLTX_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("VOLTX_DISABLE_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    from voltx.plugins import reset_plugins

    reset_plugins()
    yield
    reset_plugins()
