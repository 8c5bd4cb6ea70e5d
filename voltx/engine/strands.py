"""Hard Strands: exact tools the intent router dispatches frames to.

Two ways to call a strand:
- the **frame protocol** (the original's): ``process(frame, b)`` reads operands from slot 6
  (Instrument) of row ``b`` and writes the answer to slot 8 (Result), returning a
  :class:`StrandResult`;
- a **typed API** per strand (``MathEngine.compute("add", 3, 4)``), for callers that know
  what they want and should not pack numbers into float slots.

Strands are registered as plugins (``register_strands`` with a :class:`voltx.plugin_specs.StrandSpec`
whose factory builds the strand); the router only needs ``name``, ``threshold``,
``capability_vector()`` and ``process``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from voltx.engine.frame import SLOT_DIM, Source, TensorFrame
from voltx.engine.seeded import seeded_unit_vector
from voltx.errors import VoltxError

OPERAND_SLOT = 6  # Instrument: the request
RESULT_SLOT = 8  # Result: the answer


class StrandError(VoltxError):
    """A strand could not answer (bad operands, unknown op). The router keeps the frame."""

    exit_code = 65


@dataclass
class StrandResult:
    frame: TensorFrame
    activated: bool
    description: str
    failed: bool = False
    details: dict = field(default_factory=dict)


class HardStrand(Protocol):
    name: str
    threshold: float

    def capability_vector(self) -> torch.Tensor: ...

    def process(self, frame: TensorFrame, b: int = 0) -> StrandResult: ...


def capability(seed: int) -> torch.Tensor:
    """The original's deterministic capability vector for a strand seed (unit, 256-d)."""
    return seeded_unit_vector(seed, SLOT_DIM)


def read_numbers(frame: TensorFrame, b: int, slot: int = OPERAND_SLOT, res: int = 0, count: int = 4) -> list[float]:
    vec = frame.read(slot, res, b=b)
    if vec is None:
        raise StrandError(f"slot S{slot} R{res} is empty: nothing to compute")
    return [float(v) for v in vec[:count]]


def write_numbers(frame: TensorFrame, b: int, values: list[float], *, slot: int = RESULT_SLOT, res: int = 0) -> None:
    vec = torch.zeros(SLOT_DIM, dtype=frame.data.dtype, device=frame.data.device)
    vec[: len(values)] = torch.tensor(values, dtype=frame.data.dtype)
    frame.write(slot, res, vec, b=b, certainty=1.0, source=int(Source.HARD_CORE))


def mark_proof(frame: TensorFrame, b: int) -> None:
    meta = frame.meta[b]
    meta.verified = True
    meta.proof_length += 1


# Bytes in float slots: the original's way of carrying code through a frame (S6 R1..R3).
BYTES_PER_RES = SLOT_DIM
TEXT_RESOLUTIONS = (1, 2, 3)
RESULT_TEXT_RESOLUTIONS = (2, 3)
"""Where a strand's text answer goes in S8 (R0 keeps the numbers): up to 512 bytes, R2 first."""


def write_text(frame: TensorFrame, b: int, text: str, *, slot: int, resolutions=TEXT_RESOLUTIONS) -> int:
    """Pack UTF-8 bytes as floats (value + 1, so 0 marks the end) into the slot's resolutions."""
    data = text.encode("utf-8")[: BYTES_PER_RES * len(resolutions)]
    for i, res in enumerate(resolutions):
        chunk = data[i * BYTES_PER_RES : (i + 1) * BYTES_PER_RES]
        if not chunk:
            break
        vec = torch.zeros(SLOT_DIM, dtype=frame.data.dtype, device=frame.data.device)
        vec[: len(chunk)] = torch.tensor(list(chunk), dtype=frame.data.dtype) + 1.0
        frame.write(slot, res, vec, b=b, certainty=1.0)
    return len(data)


def read_text(frame: TensorFrame, b: int, *, slot: int, resolutions=TEXT_RESOLUTIONS) -> str:
    out = bytearray()
    for res in resolutions:
        vec = frame.read(slot, res, b=b)
        if vec is None:
            break
        for value in vec.tolist():
            if value < 0.5:
                return out.decode("utf-8", "replace")
            out.append(min(255, int(round(value)) - 1))
    return out.decode("utf-8", "replace")


def format_number(value: float) -> str:
    """A number from a float slot as shown: an integer when it is one (within float32 noise), else 4 decimals."""
    return str(int(round(value))) if abs(value - round(value)) < 1e-4 and abs(value) < 1e15 else f"{value:.4f}"


def strand_answer(frame: TensorFrame, b: int = 0) -> str | None:
    """What a strand answered in row ``b``, as every translator prints it, or None.

    Its text in S8 R2..R3 (the MathEngine's exact number, a program's output) as is; else a
    number flagged valid in S8 R0 ``[value, 1.0]`` (the original's layout: HDC similarity).
    """
    if frame.read(RESULT_SLOT, 2, b=b) is not None:
        return read_text(frame, b, slot=RESULT_SLOT, resolutions=RESULT_TEXT_RESOLUTIONS)
    result = frame.read(RESULT_SLOT, 0, b=b)
    if result is not None and float(result[1]) > 0.5:
        return format_number(float(result[0]))
    return None
