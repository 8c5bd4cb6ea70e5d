"""MathEngine: exact arithmetic.

Frame protocol (the original's): S6 R0 = [op, left, right]; ops 1 add, 2 sub, 3 mul,
4 div, 5 pow, 6 sqrt, 7 abs, 8 neg, matched within ±0.1. Answer: S8 R0 = [value, 1.0]
with γ 1 and source HardCore; the frame is marked verified and its proof grows by one.
Arithmetic is done in Python floats (double), not the original's f32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from voltx.engine.frame import TensorFrame
from voltx.engine.seeded import SEEDS
from voltx.engine.strands import StrandError, StrandResult, capability, mark_proof, read_numbers, write_numbers

OPS = {1: "add", 2: "sub", 3: "mul", 4: "div", 5: "pow", 6: "sqrt", 7: "abs", 8: "neg"}
CODES = {name: code for code, name in OPS.items()}
SYMBOLS = {"+": "add", "-": "sub", "−": "sub", "*": "mul", "×": "mul", "x": "mul", "/": "div", "÷": "div", "^": "pow", "**": "pow"}
UNARY = {"sqrt", "abs", "neg"}


@dataclass(frozen=True)
class MathResult:
    op: str
    value: float

    def text(self) -> str:
        v = self.value
        return str(int(round(v))) if abs(v - round(v)) < 1e-4 and abs(v) < 1e15 else f"{v:.4f}"


class MathEngine:
    name = "math_engine"
    threshold = 0.3

    def capability_vector(self):
        return capability(SEEDS["math_engine"])

    # -- typed API ---------------------------------------------------------------------------
    def compute(self, op: str, left: float, right: float | None = None) -> MathResult:
        op = SYMBOLS.get(op, op)
        if op not in CODES:
            raise StrandError(f"unknown math operation {op!r}; known: {', '.join(CODES)} (or {' '.join(SYMBOLS)})")
        if op not in UNARY and right is None:
            raise StrandError(f"{op} needs two operands")
        try:
            value = {
                "add": lambda: left + right,
                "sub": lambda: left - right,
                "mul": lambda: left * right,
                "div": lambda: left / right,
                "pow": lambda: math.pow(left, right),
                "sqrt": lambda: math.sqrt(left),
                "abs": lambda: abs(left),
                "neg": lambda: -left,
            }[op]()
        except ZeroDivisionError:
            raise StrandError("division by zero") from None
        except (ValueError, OverflowError) as exc:
            raise StrandError(f"{op}({left}{', ' + str(right) if right is not None else ''}): {exc}") from None
        if not math.isfinite(value):
            raise StrandError(f"{op} gives a non-finite result")
        return MathResult(op, value)

    # -- frame protocol ------------------------------------------------------------------------
    def process(self, frame: TensorFrame, b: int = 0) -> StrandResult:
        code, left, right = read_numbers(frame, b, count=3)
        op = next((name for c, name in OPS.items() if abs(code - c) <= 0.1), None)
        if op is None:
            raise StrandError(f"unknown math op code {code:g} in S6 R0[0]; valid codes: {OPS}")
        result = self.compute(op, left, right)
        write_numbers(frame, b, [result.value, 1.0])
        mark_proof(frame, b)
        args = f"{left:g}" if op in UNARY else f"{left:g}, {right:g}"
        return StrandResult(frame, True, f"{op}({args}) = {result.text()}", details={"op": op, "value": result.value})
