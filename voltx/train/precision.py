"""How one optimizer step's forward and backward run: autocast, loss scaling, micro-batches.

``[hardware].precision``: "bf16" autocasts to bfloat16 (CUDA, and the CPU: the same code path
runs in the tests), "fp16" autocasts to float16 with a :class:`torch.amp.GradScaler` (CUDA; on
the CPU too where torch supports it), "fp32" runs as written. The scaler's state (scale, growth
tracker) goes into every checkpoint, so a resumed fp16 run scales its next step exactly as the
uninterrupted one would.

Gradient accumulation: a :class:`~voltx.train.batches.MicroBatches` batch runs the
step once per part and back-propagates each part's loss times its share of the batch's items,
so for a loss that is a mean over samples the summed gradient is the whole batch's (within
floating-point rounding), in the memory of one part. Modules sharded with FSDP2 reduce their
gradients only in the last part's backward (:func:`voltx.train.sharding.gradient_sync`), and
their fp16 scaler is :func:`voltx.train.sharding.grad_scaler`.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from voltx.errors import ConfigError
from voltx.train.batches import MicroBatches
from voltx.train.sharding import grad_scaler, gradient_sync

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Precision:
    """Autocast and loss scaling of one stage, from ``[hardware].precision`` and the device."""

    def __init__(self, precision: str, device: torch.device, sharded: list[torch.nn.Module] | tuple = ()):
        if precision not in ("fp32", *DTYPES):
            raise ConfigError(f"hardware.precision must be one of 'fp32', 'bf16', 'fp16', got {precision!r}")
        self.name, self.device = precision, device
        self.dtype = DTYPES.get(precision)
        if self.dtype is not None and not torch.amp.is_autocast_available(device.type):
            raise ConfigError(f"hardware.precision = {precision!r}: torch {torch.__version__} has no autocast on "
                              f"{device.type}; use precision = \"fp32\" there.")
        self.sharded = list(sharded)
        """Modules sharded with FSDP2 (:func:`voltx.train.sharding.apply_strategy`)."""
        self.scaler = None
        if precision == "fp16":
            self.scaler = grad_scaler(device) if self.sharded else torch.amp.GradScaler(device.type)

    @property
    def scaled(self) -> bool:
        """Whether gradients are loss-scaled: then a non-finite gradient is the scaler's to skip, not divergence."""
        return self.scaler is not None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def forward_backward(self, step: Callable[[Any], dict[str, torch.Tensor]], batch: Any) -> dict[str, torch.Tensor]:
        """Run ``step`` and back-propagate its ``loss``; for micro-batches, once per part, the
        terms returned as the parts' weighted means (``batch_size`` as their sum)."""
        if not isinstance(batch, MicroBatches):
            with self.autocast():
                out = step(batch)
            self._backward(out["loss"])
            return out
        total: dict[str, Any] = {}
        last = len(batch.parts) - 1
        for i, (part, weight) in enumerate(zip(batch.parts, batch.weights)):
            if self.sharded:
                gradient_sync(self.sharded, i == last)  # one reduce-scatter per step, in the last part's backward
            with self.autocast():
                out = step(part)
            self._backward(out["loss"] * weight)
            for key, value in out.items():
                if key == "batch_size":
                    total[key] = total.get(key, 0) + int(value)
                else:
                    share = value.detach().float() * weight
                    total[key] = share if key not in total else total[key] + share
        return total

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Before clipping: gradients back to their true size."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.scaler is not None:
            self.scaler.step(optimizer)  # skipped when a gradient is inf/NaN; the scale then backs off
            self.scaler.update()
        else:
            optimizer.step()

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (JSON): the scaler's state when there is one."""
        return {"scaler": self.scaler.state_dict()} if self.scaler is not None else {}

    def load(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
