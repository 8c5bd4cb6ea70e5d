"""The deterministic fallback translator (the original's StubTranslator, tidied).

Used by ``voltx think`` when no trained translator checkpoint is given, so the whole
pipeline (safety, routing, RAR, decoding) works out of the box.

- Math fast path: "3 + 4", "what is 2.5 * 4?", "sqrt 16" -> S1 Predicate R0 = the
  MathEngine capability vector (γ 0.9), S6 Instrument R0 = [op code, left, right] (γ 1),
  discourse Query. The router then sends the frame to MathEngine.
- Code: "run: <python>" / "debug: <python>" -> the CodeRunner / CodeDebugger request
  (capability vector in S1, op code in S6 R0, the source bytes in S6 R1..R3).
- Otherwise words (lower-cased, whitespace-split, at most 16) go to slots by position,
  each a seeded unit vector of its FNV-1a hash at R0 and R1, γ 0.8, source Translator,
  needs_verify; discourse by the final punctuation.
- Decode: a Result slot carrying a valid number prints it; other slots print their
  nearest known word (cosine > 0.5), Agent, Predicate, Patient first.
"""

from __future__ import annotations

import re

import torch

from voltx.engine.frame import MAX_SLOTS, Discourse, Source, TensorFrame
from voltx.engine.seeded import SEEDS, fnv1a64, seeded_unit_vector
from voltx.engine.strands import OPERAND_SLOT, RESULT_SLOT, read_text, write_text
from voltx.errors import UsageError

MAX_INPUT_BYTES = 10_000
PREDICATE_SLOT = 1
_NUM = r"(-?\d+(?:\.\d+)?)"
_BINARY = re.compile(rf"^\s*(?:what\s+is|compute|calculate)?\s*{_NUM}\s*(\*\*|[-+*/^×÷x−])\s*{_NUM}\s*[?=!.]*\s*$", re.I)
_UNARY = re.compile(rf"^\s*(?:what\s+is\s+(?:the\s+)?)?(sqrt|abs|neg)(?:\s+of)?\s*\(?\s*{_NUM}\s*\)?\s*[?=!.]*\s*$", re.I)
_CODE = re.compile(r"^\s*(run|debug)\s*:\s*(.+)$", re.I | re.S)
CODE_OPS = {"run": (10, "code_runner"), "debug": (16, "code_debugger")}
OP_CODES = {"+": 1, "-": 2, "−": 2, "*": 3, "×": 3, "x": 3, "/": 4, "÷": 4, "^": 5, "**": 5, "sqrt": 6, "abs": 7, "neg": 8}


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
        math_request = self._math(text)
        if math_request is not None:
            code, left, right = math_request
            frame.write(PREDICATE_SLOT, 0, seeded_unit_vector(SEEDS["math_engine"]), certainty=0.9, source=int(Source.TRANSLATOR))
            operands = torch.zeros(frame.data.shape[-1])
            operands[:3] = torch.tensor([float(code), left, right])
            frame.write(OPERAND_SLOT, 0, operands, certainty=1.0, source=int(Source.TRANSLATOR))
            frame.meta[0].discourse = Discourse.QUERY
            return frame
        code_request = _CODE.match(text)
        if code_request is not None:
            op, strand = CODE_OPS[code_request.group(1).lower()]
            size = len(code_request.group(2).encode("utf-8"))
            if size > 768:  # S6 R1..R3 hold 3 x 256 bytes, as in the original
                raise UsageError(f"code is {size} bytes; a frame carries at most 768. Call the strand's typed API "
                                 "(voltx_plugins.strands.code_runner.CodeRunner().run) for longer programs.")
            seed = SEEDS.get(strand, 0x434F444544424731)
            frame.write(PREDICATE_SLOT, 0, seeded_unit_vector(seed), certainty=0.9, source=int(Source.TRANSLATOR))
            request = torch.zeros(frame.data.shape[-1])
            request[0] = float(op)
            frame.write(OPERAND_SLOT, 0, request, certainty=1.0, source=int(Source.TRANSLATOR))
            write_text(frame, 0, code_request.group(2), slot=OPERAND_SLOT)
            frame.meta[0].discourse = Discourse.COMMAND
            return frame
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
    def _math(text: str) -> tuple[int, float, float] | None:
        m = _BINARY.match(text)
        if m:
            return OP_CODES[m.group(2).lower()], float(m.group(1)), float(m.group(3))
        m = _UNARY.match(text)
        if m:
            return OP_CODES[m.group(1).lower()], float(m.group(2)), 0.0
        return None

    def decode(self, frame: TensorFrame, b: int = 0) -> str:
        if frame.read(RESULT_SLOT, 2, b=b) is not None:  # a strand's text answer (program output, debug report)
            return read_text(frame, b, slot=RESULT_SLOT, resolutions=(2,))
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
