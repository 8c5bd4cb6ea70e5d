"""The deterministic fallback translator (the original's StubTranslator, tidied).

Used by ``voltx think`` when no trained translator checkpoint is given, so the whole
pipeline (safety, routing, RAR, decoding) works out of the box.

- Math fast path: "3 + 4", "(17 * 3) - 5", "what is 2.5 times 4?", "sqrt 16" (any query
  voltx.engine.arithmetic.expression_in reads as arithmetic) -> S1 Predicate R0 = the
  MathEngine capability vector (γ 0.9), S6 Instrument R0 = [9, ...] (γ 1) with the
  expression's text in S6 R1..R3, discourse Query. The router then sends the frame to
  MathEngine, which computes it exactly (the original put [op, left, right] floats in S6 R0,
  which cannot hold 16777217 or a compound expression).
- Code: "run: <python>" / "debug: <python>" -> the CodeRunner / CodeDebugger request
  (capability vector in S1, op code in S6 R0, the source bytes in S6 R1..R3).
- Otherwise words (lower-cased, whitespace-split, at most 16) go to slots by position,
  each a seeded unit vector of its FNV-1a hash at R0 and R1, γ 0.8, source Translator,
  needs_verify; discourse by the final punctuation.
- Decode: a strand's text answer in S8 R2..R3 (the MathEngine's exact number, a program's
  output) is printed as is; else a Result slot carrying a valid number prints it; other slots print their
  nearest known word (cosine > 0.5), Agent, Predicate, Patient first.
"""

from __future__ import annotations

import re

import torch

from voltx.engine.arithmetic import expression_in
from voltx.engine.frame import MAX_SLOTS, Discourse, Source, TensorFrame
from voltx.engine.seeded import SEEDS, fnv1a64, seeded_unit_vector
from voltx.engine.strands import OPERAND_SLOT, RESULT_SLOT, RESULT_TEXT_RESOLUTIONS, read_text, write_text
from voltx.errors import UsageError

OP_EXPRESSION = 9  # MathEngine: the expression's text in S6 R1..R3 (voltx_plugins.strands.math_engine)

MAX_INPUT_BYTES = 10_000
PREDICATE_SLOT = 1
_CODE = re.compile(r"^\s*(run|debug)\s*:\s*(.+)$", re.I | re.S)
CODE_OPS = {"run": (10, "code_runner"), "debug": (16, "code_debugger")}
FRAME_TEXT_BYTES = 768  # S6 R1..R3 hold 3 x 256 bytes, as in the original


def format_number(value: float) -> str:
    return str(int(round(value))) if abs(value - round(value)) < 1e-4 and abs(value) < 1e15 else f"{value:.4f}"


class StubTranslator:
    def __init__(self) -> None:
        self.vocab: dict[str, torch.Tensor] = {}

    def word_vector(self, word: str) -> torch.Tensor:
        vec = self.vocab.get(word)
        if vec is None:
            vec = seeded_unit_vector(fnv1a64(word))
            self.vocab[word] = vec
        return vec

    def encode(self, text: str) -> TensorFrame:
        if len(text.encode("utf-8")) > MAX_INPUT_BYTES:
            raise UsageError(f"input is {len(text.encode('utf-8'))} bytes; the translator accepts at most {MAX_INPUT_BYTES}")
        frame = TensorFrame.empty(1)
        expression = expression_in(text)
        if expression is not None:
            return self._request(frame, SEEDS["math_engine"], OP_EXPRESSION, expression, Discourse.QUERY,
                                 "an arithmetic expression", "voltx_plugins.strands.math_engine.MathEngine().evaluate")
        code_request = _CODE.match(text)
        if code_request is not None:
            op, strand = CODE_OPS[code_request.group(1).lower()]
            return self._request(frame, SEEDS.get(strand, 0x434F444544424731), op, code_request.group(2), Discourse.COMMAND,
                                 "code", "voltx_plugins.strands.code_runner.CodeRunner().run")
        words = text.lower().split()[:MAX_SLOTS]
        for i, word in enumerate(words):
            vec = self.word_vector(word)
            for res in (0, 1):
                frame.write(i, res, vec, certainty=0.8, source=int(Source.TRANSLATOR))
            frame.needs_verify[0, i] = True
        stripped = text.strip()
        frame.meta[0].discourse = Discourse.QUERY if stripped.endswith("?") else Discourse.COMMAND if stripped.endswith("!") else Discourse.STATEMENT
        return frame

    @staticmethod
    def _request(frame: TensorFrame, seed: int, op: int, payload: str, discourse: Discourse, what: str, typed_api: str) -> TensorFrame:
        """A strand request: its capability vector in S1, the op code in S6 R0, the text in S6 R1..R3."""
        size = len(payload.encode("utf-8"))
        if size > FRAME_TEXT_BYTES:
            raise UsageError(f"{what} is {size} bytes; a frame carries at most {FRAME_TEXT_BYTES}. "
                             f"Call the strand's typed API ({typed_api}) for longer input.")
        frame.write(PREDICATE_SLOT, 0, seeded_unit_vector(seed), certainty=0.9, source=int(Source.TRANSLATOR))
        request = torch.zeros(frame.data.shape[-1])
        request[0] = float(op)
        frame.write(OPERAND_SLOT, 0, request, certainty=1.0, source=int(Source.TRANSLATOR))
        write_text(frame, 0, payload, slot=OPERAND_SLOT)
        frame.meta[0].discourse = discourse
        return frame

    def decode(self, frame: TensorFrame, b: int = 0) -> str:
        if frame.read(RESULT_SLOT, 2, b=b) is not None:  # a strand's text answer (exact number, program output)
            return read_text(frame, b, slot=RESULT_SLOT, resolutions=RESULT_TEXT_RESOLUTIONS)
        result = frame.read(RESULT_SLOT, 0, b=b)
        if result is not None and float(result[1]) > 0.5:
            return format_number(float(result[0]))
        words: dict[int, str] = {}
        for slot in range(MAX_SLOTS):
            for res in (1, 0, 2, 3):
                vec = frame.read(slot, res, b=b)
                if vec is not None:
                    words[slot] = self._nearest(vec) or f"[slot{slot}]"
                    break
        if not words:
            return ""
        order = [s for s in (0, 1, 2) if s in words] + [s for s in sorted(words) if s > 2]
        return " ".join(words[s] for s in order) + "."

    def _nearest(self, vec: torch.Tensor) -> str | None:
        if not self.vocab:
            return None
        names = list(self.vocab)
        table = torch.stack([self.vocab[n] for n in names])
        sims = torch.nn.functional.cosine_similarity(table, vec.float()[None, :], dim=-1)
        best = int(sims.argmax())
        return names[best] if float(sims[best]) > 0.5 else None
