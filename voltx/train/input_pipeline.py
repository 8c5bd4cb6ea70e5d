"""The input pipeline: where a stage's batches are collated, and how they reach the device.

:class:`~voltx.train.batches.EpochBatches` decides *which* items form batch ``b`` of epoch
``e`` (a pure function of the seed and the epoch); :class:`StageInput` decides *where* they
are collated. A stage whose collate is a pure function of its items (no RNG draw, no shared
state it changes: tokenising, padding, stacking) opts in with ``Stage.background_collate``
(``train_stage(..., background_collate=True)``); its batches are then collated by a
background thread up to ``[hardware].prefetch`` batches ahead of the training thread, pinned
when the device is CUDA, and copied to the device with ``non_blocking=True``, so the copy
overlaps the GPU's work on the previous step. Other stages collate on the training thread,
as before.

Exact resume is unchanged: the loop's position is the index of the batch it *consumed*;
batches collated ahead and not consumed are dropped at a stop, and a resumed epoch collates
again from that index (the collate being pure, to the same tensors).

Why a thread and not DataLoader workers, measured by ``benchmarks/bench_input.py`` (translator
quick encoder, README "Performance"): with the thread the training thread waited for none of its
batches; with a one-worker DataLoader it waited for every one (~20 ms each: the batch is pickled
through a pipe), and workers fork per epoch. A thread's collation overlaps the step's kernels,
which release the GIL. What one thread cannot hide is a collate slower than a step: tokenising
64 code/docstring pairs per batch (BPE + role labels) took 270-330 ms on the loaded 2-core machine
(BPE alone 130), more than a GPU step; tokenise once at load (as the translator does) and let the
collate pad.

Gradient accumulation is here too: with ``micro > 1`` each batch's items are split into
``micro`` near-equal parts collated separately (:class:`MicroBatches`), so any phase's
collate and step work unchanged on a part.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from voltx.train.batches import EpochBatches, MicroBatches


@dataclass
class InputStats:
    """What the training thread waited for: batches it asked for that were not collated yet."""

    batches: int = 0
    waits: int = 0
    """Batches not ready when asked for, the first batch of each epoch excepted (nothing runs ahead of it)."""
    wait_seconds: float = 0.0

    def as_record(self) -> dict[str, float]:
        return {"batches": self.batches, "waits": self.waits, "wait_seconds": round(self.wait_seconds, 4)}


def split_items(idx: list[int], parts: int) -> list[list[int]]:
    """``idx`` in ``parts`` contiguous, near-equal chunks (never an empty one)."""
    parts = max(1, min(parts, len(idx)))
    size, extra = divmod(len(idx), parts)
    out, at = [], 0
    for p in range(parts):
        n = size + (1 if p < extra else 0)
        out.append(idx[at : at + n])
        at += n
    return out


def map_tensors(batch: Any, fn) -> Any:
    """``fn`` applied to every tensor of a batch (tensors, tuples, lists, dicts, MicroBatches); the rest as is."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, MicroBatches):
        return MicroBatches([map_tensors(p, fn) for p in batch.parts], batch.weights)
    if isinstance(batch, tuple):
        return type(batch)(*(map_tensors(b, fn) for b in batch)) if hasattr(batch, "_fields") else tuple(map_tensors(b, fn) for b in batch)
    if isinstance(batch, list):
        return [map_tensors(b, fn) for b in batch]
    if isinstance(batch, dict):
        return {k: map_tensors(v, fn) for k, v in batch.items()}
    return batch


_END = object()


@dataclass
class _Failed:
    error: BaseException


@dataclass
class StageInput:
    """The batches the loop trains on: ``batches``' order, collated inline or ``prefetch`` ahead."""

    batches: EpochBatches
    device: torch.device
    prefetch: int = 0
    """0: collate on the training thread, batches left where collate puts them (the step moves them)."""
    micro: int = 1
    stats: InputStats = field(default_factory=InputStats)

    @property
    def per_epoch(self) -> int:
        return self.batches.per_epoch

    @property
    def batch_size(self) -> int:
        return self.batches.batch_size

    def collate(self, idx: list[int]) -> Any:
        """The batch of items ``idx``: one collated batch, or :class:`MicroBatches` when ``micro > 1``."""
        b = self.batches
        if self.micro <= 1:
            return b.collate([b.items[i] for i in idx])
        chunks = split_items(idx, self.micro)
        return MicroBatches([b.collate([b.items[i] for i in c]) for c in chunks], [len(c) / len(idx) for c in chunks])

    def iterate(self, epoch: int, start: int = 0) -> Iterator[tuple[int, Any]]:
        """Yield (batch index, batch) from batch ``start`` of ``epoch``, as EpochBatches does."""
        if self.prefetch <= 0 and self.micro <= 1:  # as before the pipeline: any object with iterate() will do
            for b, batch in self.batches.iterate(epoch, start):
                self.stats.batches += 1
                yield b, batch
            return
        jobs = self.batches.indices(epoch, start)
        if self.prefetch <= 0:
            for b, idx in jobs:
                self.stats.batches += 1
                yield b, self.collate(idx)
            return
        yield from self._prefetched(jobs)

    def _prefetched(self, jobs: Iterator[tuple[int, list[int]]]) -> Iterator[tuple[int, Any]]:
        cuda = self.device.type == "cuda"
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        done = threading.Event()

        def put(item) -> bool:
            while not done.is_set():  # time out now and then: a closed iterator must free this thread
                try:
                    ready.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for b, idx in jobs:
                    batch = self.collate(idx)
                    if cuda:
                        batch = map_tensors(batch, lambda t: t.pin_memory() if t.device.type == "cpu" else t)
                    if not put((b, batch)):
                        return
                put(_END)
            except BaseException as exc:  # re-raised on the training thread
                put(_Failed(exc))

        worker = threading.Thread(target=produce, name="voltx-collate", daemon=True)
        worker.start()
        first = True
        try:
            while True:
                try:
                    item = ready.get_nowait()
                except queue.Empty:
                    began = time.perf_counter()
                    item = ready.get()
                    if not first and item is not _END:
                        self.stats.waits += 1
                        self.stats.wait_seconds += time.perf_counter() - began
                first = False
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                b, batch = item
                self.stats.batches += 1
                yield b, map_tensors(batch, lambda t: t.to(self.device, non_blocking=True))
        finally:
            done.set()
            # Wait for the collate in progress: a daemon thread still inside torch when the
            # interpreter exits (a stop -> exit 75) aborts the process ("terminate called
            # without an active exception", exit -6) instead of exiting with the run's code.
            worker.join()
