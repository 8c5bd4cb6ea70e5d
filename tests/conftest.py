"""Shared fixtures: an isolated run store, a tiny translator corpus, and a CLI runner.

Everything a test needs is generated here (the corpus comes from this Python's own
standard library); nothing is downloaded and nothing outside tmp_path is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Under pytest-xdist (pyproject's addopts) each core already runs a worker: torch in a worker and in
# the voltx processes its tests start takes one thread, not one per core (2 workers of 2 threads on
# 2 cores only contend). Set before any test imports torch; an explicit OMP_NUM_THREADS wins.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Overrides that make the translator finish in seconds on 2 CPU cores.
TINY_TRANSLATOR = [
    "max_examples=120",
    "tokenizer.vocab_size=300",
    "encoder.epochs=2",
    "encoder.batch_size=16",
    "encoder.max_seq_len=32",
    "encoder.warmup=5",
    "encoder.valid_batches=2",
    "decoder.epochs=1",
    "decoder.batch_size=16",
    "decoder.max_len=32",
    "decoder.warmup=5",
    "decoder.valid_batches=2",
    "decoder.sample_count=1",
    "run.log_every=1",
]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test gets its own runs root, cache and state dirs and working directory."""
    monkeypatch.setenv("VOLTX_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the console's remembered launch choice
    monkeypatch.delenv("VOLTX_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("VOLTX_DISABLE_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    from voltx.plugins import reset_plugins

    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture(scope="session")
def stdlib_pairs(tmp_path_factory) -> tuple[list, Path]:
    """Every (code, docstring) pair of this Python's stdlib and the cache folder they were extracted
    into: extracted once per session, as the whole stdlib takes seconds to parse. Under pytest-xdist
    the first worker to get here parses it and the others read its cache (the folder is shared)."""
    from voltx.data.code_pairs import extract_stdlib_pairs

    if "PYTEST_XDIST_WORKER" not in os.environ:
        cache = tmp_path_factory.mktemp("stdlib-cache")
        return extract_stdlib_pairs(cache_dir=cache), cache
    cache = tmp_path_factory.getbasetemp().parent / "stdlib-cache"  # the one base folder of all workers
    cache.mkdir(exist_ok=True)
    with open(cache.parent / "stdlib-cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait for the one parse, then read its cache
        return extract_stdlib_pairs(cache_dir=cache), cache


@pytest.fixture(scope="session")
def stdlib_pairs_jsonl(tmp_path_factory, stdlib_pairs) -> Path:
    """A CodeSearchNet-format JSONL of 200 real (code, docstring) pairs from the stdlib."""
    pairs = stdlib_pairs[0][:200]
    path = tmp_path_factory.mktemp("corpus") / "csn_python_train.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for p in pairs:
            fh.write(json.dumps({"code": p.code, "docstring": p.docstring, "func_name": p.func_name, "language": "python"}) + "\n")
    return path


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``voltx ARGS`` in a fresh interpreter (so exit codes and stderr are the real ones)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "voltx", *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout
    )


@pytest.fixture
def cli():
    return run_cli


@contextlib.contextmanager
def _process_state_kept():
    """Put back the signal handlers, random states and torch's deterministic mode as they were."""
    import random

    import numpy as np
    import torch

    from voltx.train.signals import HANDLED

    handlers = {sig: signal.getsignal(sig) for sig in HANDLED}
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])


@pytest.fixture
def cli_in_process(capfd, monkeypatch):
    """``voltx ARGS`` through ``voltx.cli.main.main`` in this interpreter: the same argv, exit code,
    stdout and stderr as :func:`run_cli` without paying seconds for a fresh interpreter and torch.
    For what needs no process of its own: not signals, exit statuses of the real entry point,
    a run that is killed, nor plugins put on PYTHONPATH; a tiny run trains here (one interpreter
    with torch fewer, seconds of CPU each). ``env`` and ``cwd`` hold for the call only;
    what a ``voltx run`` that stops early leaves set process-wide (the stop handlers it keeps for
    a late signal, seeds, deterministic algorithms) is put back afterwards."""
    from voltx.cli.main import main

    def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        capfd.readouterr()  # drop whatever the test printed before
        with monkeypatch.context() as scoped, _process_state_kept():
            for key, value in (env or {}).items():
                scoped.setenv(key, value)
            if cwd is not None:
                scoped.chdir(cwd)
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capfd.readouterr()
        return subprocess.CompletedProcess(["voltx", *args], code, out.out, out.err)

    return run


def generated_records(gen, split="train"):
    """Every record a generator (a converter with ``generator = True``) makes for ``split``, each validated."""
    out = []
    for row in gen.read_local([], split):
        for rec in gen.convert(row, gen.formats[0], None):
            rec.validate()
            out.append(rec)
    return out


def pytest_collection_modifyitems(config, items):
    """End-to-end runs (``slow``, up to a minute or two each) first: the pytest-xdist workers then end
    on the many millisecond tests, which even out, instead of one worker finishing a long run alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: otherwise collection order
