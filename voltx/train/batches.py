"""Resumable batching: a shuffled order that is a pure function of (seed, epoch).

The position in an epoch is just the batch index, so exact resume needs no sampler
state beyond (epoch, batch index). The last partial batch is dropped (as the original
trainers did) unless the dataset is smaller than one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence


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

    def order(self, epoch: int) -> list[int]:
        import torch

        n = len(self.items)
        if not self.shuffle:
            return list(range(n))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(n, generator=gen).tolist()

    def iterate(self, epoch: int, start: int = 0) -> Iterator[tuple[int, Any]]:
        """Yield (batch index, collated batch) from batch ``start`` of ``epoch``."""
        order = self.order(epoch)
        size = min(self.batch_size, len(order))
        for b in range(start, self.per_epoch):
            idx = order[b * size : (b + 1) * size][self.rank :: self.world]
            yield b, self.collate([self.items[i] for i in idx])
