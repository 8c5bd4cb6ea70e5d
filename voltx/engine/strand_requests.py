"""Strand requests: queries an exact Hard Strand answers, recognised in text and put in a frame.

One place for every translator, so ``voltx think`` routes a query the same way with the stub
translator and with a trained one (``--checkpoint``): a trained encoder's slots are not meant
to carry 16777217 exactly, the request's text is.

- ``request_in(text)``: arithmetic (anything voltx.engine.arithmetic.expression_in reads as an
  expression: "(17 * 3) - 5", "what is 2 plus 3") asks the MathEngine; "run: <python>" and
  "debug: <python>" ask the CodeRunner and the CodeDebugger.
- ``encode_request``: the frame the router sends to that strand: its capability vector in S1
  (Predicate) R0 with γ 0.9, the op code in S6 (Instrument) R0 with γ 1, the text as bytes in
  S6 R1..R3 (at most 768), discourse Query for arithmetic, Command for code.
- ``asked_of(frame, b)``: the request a frame carries, read back before routing changes it, so
  the pipeline can say which strand a query needed when none answered it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from voltx.engine.arithmetic import expression_in
from voltx.engine.frame import Discourse, Source, TensorFrame
from voltx.engine.seeded import SEEDS, seeded_unit_vector
from voltx.engine.strands import OPERAND_SLOT, read_numbers, write_text
from voltx.errors import UsageError

PREDICATE_SLOT = 1
FRAME_TEXT_BYTES = 768  # S6 R1..R3 hold 3 x 256 bytes, as in the original
_CODE = re.compile(r"^\s*(run|debug)\s*:\s*(.+)$", re.I | re.S)
CODE_DEBUGGER_SEED = 0x434F444544424731  # "CODEDBG1": voltx's own strand, not in the original's SEEDS
_SAME_VECTOR = 0.999  # cosine of a capability vector with itself, after the frame's float32 round trip


@dataclass(frozen=True)
class RequestKind:
    """What a strand is asked for: its name, op code, capability seed and how messages call it."""

    strand: str
    op: int
    seed: int
    what: str
    discourse: Discourse
    typed_api: str


MATH = RequestKind("math_engine", 9, SEEDS["math_engine"], "arithmetic", Discourse.QUERY,
                   "voltx_plugins.strands.math_engine.MathEngine().evaluate")
RUN = RequestKind("code_runner", 10, SEEDS["code_runner"], "`run:` code", Discourse.COMMAND,
                  "voltx_plugins.strands.code_runner.CodeRunner().run")
DEBUG = RequestKind("code_debugger", 16, SEEDS.get("code_debugger", CODE_DEBUGGER_SEED), "`debug:` code", Discourse.COMMAND,
                    "voltx_plugins.strands.code_debugger.CodeDebugger().debug")
KINDS = (MATH, RUN, DEBUG)


@dataclass(frozen=True)
class StrandRequest:
    kind: RequestKind
    text: str
    """What the strand gets: the expression ("2 + 3" for "what is 2 plus 3"), the source code."""


def request_in(text: str) -> StrandRequest | None:
    """The strand request ``text`` makes, or None when it is not one (words for the translator)."""
    expression = expression_in(text)
    if expression is not None:
        return StrandRequest(MATH, expression)
    code = _CODE.match(text)
    if code is not None:
        return StrandRequest(RUN if code.group(1).lower() == "run" else DEBUG, code.group(2))
    return None


def encode_request(request: StrandRequest) -> TensorFrame:
    """A one-row frame asking ``request.kind.strand`` (see the module docstring for the layout)."""
    kind = request.kind
    size = len(request.text.encode("utf-8"))
    if size > FRAME_TEXT_BYTES:
        what = "an arithmetic expression" if kind is MATH else "code"
        raise UsageError(f"{what} is {size} bytes; a frame carries at most {FRAME_TEXT_BYTES}. "
                         f"Call the strand's typed API ({kind.typed_api}) for longer input.")
    frame = TensorFrame.empty(1)
    frame.write(PREDICATE_SLOT, 0, seeded_unit_vector(kind.seed), certainty=0.9, source=int(Source.TRANSLATOR))
    op = torch.zeros(frame.data.shape[-1])
    op[0] = float(kind.op)
    frame.write(OPERAND_SLOT, 0, op, certainty=1.0, source=int(Source.TRANSLATOR))
    write_text(frame, 0, request.text, slot=OPERAND_SLOT)
    frame.meta[0].discourse = kind.discourse
    return frame


def asked_of(frame: TensorFrame, b: int = 0) -> RequestKind | None:
    """The request row ``b`` carries (S1 R0 a strand's capability vector, S6 R0 its op code), or None."""
    capability = frame.read(PREDICATE_SLOT, 0, b=b)
    if capability is None or frame.read(OPERAND_SLOT, 0, b=b) is None:
        return None
    op = read_numbers(frame, b, count=1)[0]
    for kind in KINDS:
        if abs(op - kind.op) <= 0.1:
            expected = seeded_unit_vector(kind.seed, capability.shape[-1])
            if float(torch.nn.functional.cosine_similarity(capability.float(), expected, dim=0)) > _SAME_VECTOR:
                return kind
    return None
