"""The input pipeline on its own: the same batches as inline collation, in the same order, from
any start; a collate error raised on the training thread; a dropped iterator frees its thread;
micro-batches that cover the batch; and benchmarks/gpu_check.py leaving cleanly without CUDA."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from voltx.train.batches import EpochBatches
from voltx.train.batches import MicroBatches
from voltx.train.input_pipeline import StageInput, split_items

CPU = torch.device("cpu")


def pad(rows):
    width = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (width - len(r)) for r in rows]), [len(r) for r in rows]


def batches():
    items = [[i] * (1 + i % 7) for i in range(50)]
    return EpochBatches(items, 8, 3, pad)


def drained(feed, epoch, start=0):
    return [(b, batch[0].tolist(), batch[1]) for b, batch in feed.iterate(epoch, start)]


def test_prefetched_batches_equal_inline_ones_from_any_start():
    inline, ahead = StageInput(batches(), CPU), StageInput(batches(), CPU, prefetch=2)
    for epoch, start in ((0, 0), (1, 0), (1, 4)):
        assert drained(ahead, epoch, start) == drained(inline, epoch, start) and drained(inline, epoch, start)[0][0] == start
    assert ahead.stats.batches == 6 + 6 + 2


def test_a_collate_error_reaches_the_training_thread():
    def broken(rows):
        if len(rows[0]) == 3:
            raise ValueError("row 2 is not text")
        return pad(rows)

    source = batches()
    source.collate = broken
    with pytest.raises(ValueError, match="row 2 is not text"):
        drained(StageInput(source, CPU, prefetch=2), 0)


def test_a_dropped_iterator_frees_its_collating_thread():
    feed = StageInput(batches(), CPU, prefetch=1)
    it = feed.iterate(0)
    next(it)
    assert any(t.name == "voltx-collate" for t in threading.enumerate())
    it.close()  # what a stop at a step boundary leaves behind
    deadline = time.time() + 5
    while any(t.name == "voltx-collate" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.02)
    assert not any(t.name == "voltx-collate" for t in threading.enumerate())


def test_micro_batches_cover_the_batch_in_near_equal_parts():
    assert split_items(list(range(10)), 4) == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    assert split_items([1, 2], 5) == [[1], [2]]
    (_, whole), *_ = StageInput(batches(), CPU).iterate(0)
    (_, parts), *_ = StageInput(batches(), CPU, prefetch=2, micro=3).iterate(0)
    assert isinstance(parts, MicroBatches) and parts.weights == [3 / 8, 3 / 8, 2 / 8]
    assert sum((p[1] for p in parts.parts), []) == whole[1]


GPU_CHECK = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _gpu_check(monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", GPU_CHECK)
    gpu_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", gpu_check)  # its dataclass looks itself up there
    spec.loader.exec_module(gpu_check)
    return gpu_check


def test_gpu_check_says_there_is_no_cuda_and_exits_cleanly(monkeypatch, capsys):
    gpu_check = _gpu_check(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on this machine, and on a GPU box too
    monkeypatch.setattr(sys, "argv", [str(GPU_CHECK), "--quick"])
    assert gpu_check.main() == 0
    out = capsys.readouterr().out
    assert out.startswith("gpu_check: no CUDA device here") and "nothing to check" in out


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_gpu_check_fsdp_section_runs_on_the_cpu(monkeypatch, precision):
    """Its FSDP rows' code path (a group of one, gloo here instead of NCCL), tiny, so the GPU run finds no plain bug."""
    got = _gpu_check(monkeypatch).fsdp_speed("cpu", precision, hidden=16, blocks=2, time_freqs=4, batch=4, steps=1, warmup=1)
    assert got["steps_per_s"] > 0 and got["peak_gib"] is None
