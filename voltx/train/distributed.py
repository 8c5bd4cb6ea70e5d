"""One process of a distributed run (``voltx run --nproc-per-node N``): the collectives the loop needs.

The launcher (:mod:`voltx.train.launcher`) starts N processes through ``torch.distributed.run``;
each finds RANK/WORLD_SIZE/LOCAL_RANK in its environment and :func:`join` makes it a
:class:`Job`. What the job does, each rule in one place:

- backend: NCCL when the run trains on CUDA, gloo on the CPU (the launcher decides from
  ``[hardware].device`` and passes it as ``VOLTX_DIST_BACKEND``); the stop check and the
  set-up packets always travel on a gloo group of their own (CPU tensors: reading a flag never
  waits for the GPU stream);
- a collective that fails (a peer died, or ``hardware.collective_timeout`` passed) is
  :class:`RankLost` (exit 86), never a hang;
- data parallel ("ddp"): every rank holds the whole model (under "fsdp" too, but for the modules
  a stage shards, :mod:`voltx.train.sharding`); after backward the gradients are
  averaged with one bucketed all-reduce, as ``DistributedDataParallel`` does. Its wrapper is
  not used because phases call their models' submodules and methods directly (``model.encoder(x)``),
  which its forward hook would never see; the replicas stay bitwise equal because every rank
  applies the same averaged gradient;
- each global batch of ``batch_size`` is split evenly across the ranks (:func:`shard`), so the
  schedule, the steps per epoch and the effective batch are those of a single-process run.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from voltx.errors import EXIT_RANK_LOST, ConfigError, VoltxError

ENV_BACKEND = "VOLTX_DIST_BACKEND"
ENV_TIMEOUT = "VOLTX_DIST_TIMEOUT_S"
BUCKET_BYTES = 25 * 1024 * 1024  # DDP's default bucket size


class RankLost(VoltxError):
    """A collective failed: another process of the run died or stopped answering."""

    exit_code = EXIT_RANK_LOST


def launched() -> bool:
    """True inside a process started by ``torch.distributed.run`` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass
class Job:
    rank: int
    world: int
    local_rank: int
    backend: str
    control: Any
    """The gloo process group for CPU-side flags and packets (the default group when it is gloo)."""

    # -- flags and packets (gloo, CPU) ---------------------------------------------------------
    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any: the stop check, once per step."""
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        self._call(dist.all_reduce, t, op=dist.ReduceOp.MAX, group=self.control)
        return bool(t.item())

    def most(self, n: int) -> int:
        """The largest ``n`` of any rank, on every rank (the micro-batch split all ranks keep)."""
        t = torch.tensor([n], dtype=torch.int64)
        self._call(dist.all_reduce, t, op=dist.ReduceOp.MAX, group=self.control)
        return int(t.item())

    def total(self, n: int) -> int:
        """The sum of ``n`` over the ranks, on every rank (the samples the job trained on since the last log)."""
        t = torch.tensor([n], dtype=torch.int64)
        self._call(dist.all_reduce, t, op=dist.ReduceOp.SUM, group=self.control)
        return int(t.item())

    def broadcast_text(self, text: str | None) -> str:
        """Rank 0's ``text`` on every rank (JSON set-up packets and evaluation figures: no pickle)."""
        data = (text or "").encode("utf-8") if self.rank == 0 else b""
        size = torch.tensor([len(data)], dtype=torch.int64)
        self._call(dist.broadcast, size, src=0, group=self.control)
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if self.rank == 0 and data else torch.zeros(int(size.item()), dtype=torch.uint8)
        if int(size.item()):
            self._call(dist.broadcast, buf, src=0, group=self.control)
        return bytes(buf.tolist()).decode("utf-8") if self.rank else (text or "")

    def broadcast_json(self, value: Any) -> Any:
        return json.loads(self.broadcast_text(json.dumps(value) if self.rank == 0 else None))

    def gather_bytes(self, data: bytes) -> list[bytes]:
        """Every rank's ``data`` on rank 0 (an empty list elsewhere): each rank's own resumable state."""
        size = torch.tensor([len(data)], dtype=torch.int64)
        sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(self.world)]
        self._call(dist.all_gather, sizes, size, group=self.control)
        longest = max(int(s.item()) for s in sizes)
        padded = torch.zeros(longest, dtype=torch.uint8)
        padded[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else padded[:0]
        parts = [torch.zeros(longest, dtype=torch.uint8) for _ in range(self.world)]
        self._call(dist.all_gather, parts, padded, group=self.control)
        if self.rank:
            return []
        return [bytes(p[: int(s.item())].tolist()) for p, s in zip(parts, sizes)]

    def await_commit(self) -> None:
        """Wait until rank 0 has committed the checkpoint this rank's state went into; its failure
        (a full disk: 73) is this rank's too."""
        outcome = self.broadcast_json(None)
        if outcome.get("error"):
            raise VoltxError(f"rank 0 could not write the checkpoint: {outcome['error']}", exit_code=int(outcome["exit_code"]))

    # -- training tensors (the run's backend) ---------------------------------------------------
    def mean(self, t: torch.Tensor) -> torch.Tensor:
        """The mean of ``t`` over the ranks (the logged losses, the epoch means)."""
        out = t.detach().clone()
        self._call(dist.all_reduce, out, op=dist.ReduceOp.SUM)
        return out / self.world

    def any_tensor(self, flag: torch.Tensor) -> torch.Tensor:
        """A device-side bool flag (non-finite loss) true on every rank when true on any."""
        t = flag.to(torch.int32).reshape(1)
        self._call(dist.all_reduce, t, op=dist.ReduceOp.MAX)
        return t[0].bool()

    def sync_parameters(self, model: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (DDP's start-up broadcast)."""
        for t in [*model.parameters(), *model.buffers()]:
            if not isinstance(t, DTensor):  # a sharded parameter was cut from rank 0's weights (voltx.train.sharding)
                self._call(dist.broadcast, t.data, src=0)

    def average_gradients(self, model: torch.nn.Module) -> None:
        """Average every trainable parameter's gradient over the ranks, in flat buckets.

        A parameter without a gradient on some ranks counts as zero there; one without a
        gradient on every rank keeps ``None`` (AdamW then skips it, as it would in one process)."""
        params = [p for p in model.parameters() if p.requires_grad and not isinstance(p, DTensor)]  # FSDP2 reduces its own
        if not params:
            return
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
        self._call(dist.all_reduce, has, op=dist.ReduceOp.SUM)
        live = [p for p, n in zip(params, has.tolist()) if n > 0]
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for bucket in _buckets(live):
            flat = torch.cat([p.grad.reshape(-1) for p in bucket])
            self._call(dist.all_reduce, flat, op=dist.ReduceOp.SUM)
            flat /= self.world
            offset = 0
            for p in bucket:
                n = p.grad.numel()
                p.grad.copy_(flat[offset: offset + n].view_as(p.grad))
                offset += n

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError) as exc:  # torch.distributed's DistError family derives from RuntimeError
            raise self.lost(exc) from None

    def lost(self, exc: BaseException) -> RankLost:
        return RankLost(f"rank {self.rank}: another process of this run died or stopped answering "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}); the job stops. "
                        "The last committed checkpoint is kept: resume with --resume auto and the same --nproc-per-node.")

    def as_lost(self, exc: Exception) -> Exception:
        """``exc`` as :class:`RankLost` when it is a collective that failed outside :meth:`_call`: FSDP2's
        all-gathers and reduce-scatters inside forward and backward, a DTensor's gather, the fp16 scaler's
        all-reduce (torch raises a DistError, or gloo's RuntimeError naming gloo); any other error as it is."""
        if isinstance(exc, dist.DistError) or (type(exc) is RuntimeError and any(m in str(exc) for m in ("gloo", "NCCL", "c10d"))):
            return self.lost(exc)
        return exc

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def _buckets(params: list[torch.nn.Parameter]):
    bucket, size = [], 0
    for p in params:
        bucket.append(p)
        size += p.numel() * p.element_size()
        if size >= BUCKET_BYTES:
            yield bucket
            bucket, size = [], 0
    if bucket:
        yield bucket


def join() -> Job:
    """Join the process group torch.distributed.run set up for this process (call once)."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = os.environ.get(ENV_BACKEND) or ("nccl" if torch.cuda.is_available() else "gloo")
    timeout = datetime.timedelta(seconds=float(os.environ.get(ENV_TIMEOUT, "1800")))
    if backend == "nccl":
        torch.cuda.set_device(local)
    try:
        dist.init_process_group(backend, timeout=timeout)
        control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD
    except (RuntimeError, ValueError) as exc:
        raise RankLost(f"rank {rank}: cannot join the process group ({exc}); the job stops.") from None
    return Job(rank, world, local, backend, control)


def place(device: torch.device, job: Job | None) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` when the run trains on CUDA."""
    if job is not None and device.type == "cuda":
        return torch.device("cuda", job.local_rank)
    return device


def shard(batches, job: Job | None):
    """``batches`` as this rank sees them: its share of every global batch (``batch_size`` must
    divide evenly, so each rank's mean gradient averages to the single-process one)."""
    if job is None:
        return batches
    if batches.batch_size % job.world:
        raise ConfigError(f"batch_size = {batches.batch_size} does not split evenly across {job.world} processes; "
                          f"set a batch_size divisible by {job.world} (the batch is the global one, shared by the ranks).")
    return replace(batches, rank=job.rank, world=job.world)


def pack_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """A rank's own resumable state (RNG, running sums) as safetensors bytes, its JSON part in the metadata."""
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata={"meta": json.dumps(meta)})


def unpack_state(data: bytes) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """What :func:`pack_state` packed (the metadata read from the safetensors JSON header)."""
    from safetensors.torch import load

    n = int.from_bytes(data[:8], "little")
    meta = json.loads(json.loads(data[8: 8 + n])["__metadata__"]["meta"])
    return load(data), meta


def gather_rank_states(job: Job, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[int, tuple[dict[str, torch.Tensor], dict[str, Any]]]:
    """Every other rank's own state on rank 0 (``{rank: (tensors, meta)}``); empty on the others."""
    blobs = job.gather_bytes(pack_state(tensors, meta))
    return {r: unpack_state(b) for r, b in enumerate(blobs) if r}
