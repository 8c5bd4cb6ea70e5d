"""MathEngine: exact arithmetic (ints and fractions; voltx.engine.arithmetic does the work).

Frame protocol:
- S6 R0 = [9, ...] with the expression's text packed as bytes in S6 R1..R3 (at most 768,
  voltx.engine.strands.write_text): what ``voltx think`` sends. The text is what makes the
  answer exact; a float slot could not carry 16777217.
- S6 R0 = [op, left, right] with ops 1 add, 2 sub, 3 mul, 4 div, 5 pow, 6 sqrt, 7 abs, 8 neg
  matched within ±0.1: the original's layout. The operands are whatever the frame's floats
  hold (each read as its shortest decimal); the arithmetic on them is exact.

Answer: S8 R0 = [value as the frame's float (clamped to its range), 1.0] with γ 1 and source
HardCore, and the exact answer's text in S8 R2..R3, which the translator decodes; the frame
is marked verified and its proof grows by one. A request it cannot answer (division by zero,
a result over MAX_RESULT_DIGITS digits, a malformed expression) raises StrandError, exit 65.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from voltx.engine.arithmetic import UNARY, MathInputError, Value, apply, evaluate, to_value
from voltx.engine.frame import TensorFrame
from voltx.engine.seeded import SEEDS
from voltx.engine.strands import (OPERAND_SLOT, RESULT_SLOT, RESULT_TEXT_RESOLUTIONS, StrandError, StrandResult, capability,
                                  mark_proof, read_numbers, read_text, write_numbers, write_text)

OPS = {1: "add", 2: "sub", 3: "mul", 4: "div", 5: "pow", 6: "sqrt", 7: "abs", 8: "neg"}
OP_EXPRESSION = 9
SYMBOLS = {"+": "add", "-": "sub", "−": "sub", "*": "mul", "×": "mul", "x": "mul", "/": "div", "÷": "div", "^": "pow", "**": "pow",
           "//": "floordiv", "%": "mod"}


@dataclass(frozen=True)
class MathResult:
    op: str
    """The operation, or "expression" for a parsed expression."""
    value: Fraction
    """The exact value (for an inexact root: its rounded decimal as a fraction)."""
    exact: bool = True
    expression: str = ""

    def text(self) -> str:
        """The answer as shown: ``46``, ``3.5``, ``1/3 ≈ 0.333…``, ``≈ 1.414…`` for an irrational root."""
        return Value(self.value, self.exact).text()

    def exact_form(self) -> str:
        return Value(self.value, self.exact).exact_form()


class MathEngine:
    name = "math_engine"
    threshold = 0.3

    def capability_vector(self):
        return capability(SEEDS["math_engine"])

    # -- typed API ---------------------------------------------------------------------------
    def compute(self, op: str, left, right=None) -> MathResult:
        """One operation on ints, Fractions, Decimals, numeric strings or floats (a float as written)."""
        op = SYMBOLS.get(op, op)
        if op not in UNARY and right is None:
            raise StrandError(f"{op} needs two operands")
        try:
            value = apply(op, to_value(left), None if op in UNARY else to_value(right))
        except MathInputError as exc:
            raise StrandError(str(exc)) from None
        return MathResult(op, value.number, value.exact)

    def evaluate(self, expression: str) -> MathResult:
        """``"(17 * 3) - 5"`` -> 46, exactly; see voltx.engine.arithmetic for what is allowed and the bounds."""
        try:
            done = evaluate(expression)
        except MathInputError as exc:
            raise StrandError(str(exc)) from None
        return MathResult("expression", done.value.number, done.value.exact, done.expression)

    # -- frame protocol ------------------------------------------------------------------------
    def process(self, frame: TensorFrame, b: int = 0) -> StrandResult:
        code, left, right = read_numbers(frame, b, count=3)
        if abs(code - OP_EXPRESSION) <= 0.1:
            expression = read_text(frame, b, slot=OPERAND_SLOT)
            result = self.evaluate(expression)
            how = f"parsed arithmetic expression {result.expression!r}"
        else:
            op = next((name for c, name in OPS.items() if abs(code - c) <= 0.1), None)
            if op is None:
                raise StrandError(f"unknown math op code {code:g} in S6 R0[0]; valid codes: {OPS}, {OP_EXPRESSION} expression")
            result = self.compute(op, left, None if op in UNARY else right)
            how = f"{op}({left:g}" + ("" if op in UNARY else f", {right:g}") + ") from the frame's float operands"
        answer = result.text()
        write_numbers(frame, b, [_frame_float(result.value, frame.data.dtype), 1.0])
        write_text(frame, b, answer, slot=RESULT_SLOT, resolutions=RESULT_TEXT_RESOLUTIONS)
        mark_proof(frame, b)
        kind = "exactly in integers and fractions" if result.exact else "as a rounded decimal (an irrational root)"
        return StrandResult(frame, True, f"{how}, computed {kind}: {answer}",
                            details={"op": result.op, "expression": result.expression or None,
                                     "value": result.exact_form(), "exact": result.exact, "answer": answer})


def _frame_float(value: Fraction, dtype: torch.dtype) -> float:
    """The value in the frame's float type, clamped to its range (the exact answer is the text)."""
    limit = torch.finfo(dtype).max
    try:
        return max(-limit, min(limit, float(value)))
    except OverflowError:
        return limit if value > 0 else -limit
