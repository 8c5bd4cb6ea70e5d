"""HDCAlgebra: exact hyperdimensional operations on slot vectors.

Frame protocol (the original's): S6 R0 = [op, slot_a, slot_b, k]; ops 11 bind, 12 unbind,
13 superpose (of two), 14 permute (by k), 15 similarity, matched within ±0.5. Operands
are the R0 vectors of slots a and b. The result vector goes to S8 R0 with γ 1; for
similarity S8 R0 = [cosine, 1.0].
"""

from __future__ import annotations

import torch

from voltx.engine import hdc
from voltx.engine.frame import TensorFrame
from voltx.engine.seeded import SEEDS
from voltx.engine.strands import StrandError, StrandResult, capability, mark_proof, read_numbers, write_numbers

OPS = {11: "bind", 12: "unbind", 13: "superpose", 14: "permute", 15: "similarity"}


class HDCAlgebra:
    name = "hdc_algebra"
    threshold = 0.3

    def capability_vector(self):
        return capability(SEEDS["hdc_algebra"])

    # -- typed API ---------------------------------------------------------------------------
    def apply(self, op: str, a: torch.Tensor, b: torch.Tensor | None = None, k: int = 0) -> torch.Tensor:
        """``bind``/``unbind``/``superpose``/``similarity`` of a and b, or ``permute`` a by k."""
        if op not in OPS.values():
            raise StrandError(f"unknown HDC operation {op!r}; known: {', '.join(OPS.values())}")
        if op != "permute" and b is None:
            raise StrandError(f"{op} needs two operands")
        try:
            if op == "bind":
                return hdc.bind(a, b)
            if op == "unbind":
                return hdc.unbind(a, b)
            if op == "superpose":
                return hdc.superpose(torch.stack([a, b], dim=-2))
            if op == "permute":
                return hdc.permute(a, int(k))
            return hdc.similarity(a, b)
        except hdc.HDCError as exc:
            raise StrandError(f"{op}: {exc}") from None

    # -- frame protocol ------------------------------------------------------------------------
    def process(self, frame: TensorFrame, b: int = 0) -> StrandResult:
        code, ia, ib, k = read_numbers(frame, b, count=4)
        op = next((name for c, name in OPS.items() if abs(code - c) <= 0.5), None)
        if op is None:
            raise StrandError(f"unknown HDC op code {code:g} in S6 R0[0]; valid codes: {OPS}")
        operands = []
        for index in (ia, ib) if op != "permute" else (ia,):
            slot = int(round(index))
            if not 0 <= slot < 16:
                raise StrandError(f"operand slot {index:g} is not a slot index 0-15")
            vec = frame.read(slot, 0, b=b)
            if vec is None:
                raise StrandError(f"operand slot S{slot} has no R0 vector")
            operands.append(vec)
        result = self.apply(op, operands[0], operands[1] if len(operands) > 1 else None, int(round(k)))
        if op == "similarity":
            write_numbers(frame, b, [float(result), 1.0])
            text = f"similarity(S{int(ia)}, S{int(ib)}) = {float(result):.4f}"
        else:
            write_numbers(frame, b, result.tolist())
            text = f"{op} of S{int(ia)}" + (f", S{int(ib)}" if op != "permute" else f" by {int(k)}") + " -> S8"
        mark_proof(frame, b)
        return StrandResult(frame, True, text, details={"op": op})
