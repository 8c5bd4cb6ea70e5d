"""Resumable batching: a shuffled order that is a pure function of (seed, epoch).

The position in an epoch is just the batch index, so exact resume needs no sampler
state beyond (epoch, batch index). The last partial batch is dropped (as the original
trainers did) unless the dataset is smaller than one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence


@dataclass
class MicroBatches:
    """One optimizer step's batch as ``parts`` collated apart: gradient accumulation.

    The shared loop (:func:`voltx.train.loop.fit`) calls the stage's ``step`` on each part and
    runs its backward before the next forward, so only one part's activations are held at a
    time; the optimizer steps once, after the last. Each part's loss and terms are multiplied
    by its ``weight`` and added up. Two ways to use it:

    * ``weights`` = each part's share of the batch's items (what ``[hardware].grad_accum``
      and ``auto_batch`` build): right for a step whose loss is a mean over samples;
    * ``weights`` left out (all 1): the step itself returns its part's share of the whole
      step's loss (e.g. its summed token loss divided by the step's token count, as voltx-trio
      does), which is exact for token-weighted losses.
    """

    parts: list[Any]
    weights: list[float] | None = None

    def __post_init__(self):
        self.parts = list(self.parts)
        if self.weights is None:
            self.weights = [1.0] * len(self.parts)
        if len(self.weights) != len(self.parts):
            raise ValueError(f"MicroBatches: {len(self.parts)} parts but {len(self.weights)} weights")

    def __iter__(self):
        return iter(self.parts)

    def __len__(self) -> int:
        return len(self.parts)


def steps_per_epoch(items: int, batch_size: int) -> int:
    """Batches in one epoch of ``items`` (the last partial batch dropped, as EpochBatches does):
    what a phase plans its stages' steps with before it builds them."""
    return max(1, items // batch_size) if items else 0


@dataclass
class EpochBatches:
    items: Sequence[Any]
    batch_size: int
    seed: int
    collate: Callable[[list[Any]], Any]
    shuffle: bool = True
    rank: int = 0
    world: int = 1
    """This process's share of each batch in a distributed run (:func:`voltx.train.distributed.shard`):
    every ``world``-th item of it from ``rank`` on; the epoch order is the same on every rank."""

    @property
    def per_epoch(self) -> int:
        return steps_per_epoch(len(self.items), self.batch_size)

    @property
    def share(self) -> int:
        """Items this process trains on per step: its share of every batch (``batch_size`` items,
        or the whole dataset when it is smaller than one batch)."""
        return len(range(self.rank, min(self.batch_size, len(self.items)), self.world))

    def order(self, epoch: int) -> list[int]:
        import torch

        n = len(self.items)
        if not self.shuffle:
            return list(range(n))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(n, generator=gen).tolist()

    def indices(self, epoch: int, start: int = 0) -> Iterator[tuple[int, list[int]]]:
        """Yield (batch index, item indices) from batch ``start`` of ``epoch``: which items form
        each batch (:mod:`voltx.train.input_pipeline` decides where they are collated)."""
        order = self.order(epoch)
        size = min(self.batch_size, len(order))
        for b in range(start, self.per_epoch):
            yield b, order[b * size : (b + 1) * size][self.rank :: self.world]  # this process's share

    def iterate(self, epoch: int, start: int = 0) -> Iterator[tuple[int, Any]]:
        """Yield (batch index, collated batch) from batch ``start`` of ``epoch``."""
        for b, idx in self.indices(epoch, start):
            yield b, self.collate([self.items[i] for i in idx])
