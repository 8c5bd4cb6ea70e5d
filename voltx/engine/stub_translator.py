"""The deterministic fallback translator (the original's StubTranslator, tidied).

Used by ``voltx think`` when no trained translator checkpoint is given, so the whole
pipeline (safety, routing, RAR, decoding) works out of the box.

- Strand requests (voltx.engine.strand_requests, shared with the learned translator):
  arithmetic ("3 + 4", "(17 * 3) - 5", "what is 2.5 times 4?", "sqrt 16") becomes a MathEngine
  request with the expression's text in S6 R1..R3, which the MathEngine computes exactly;
  "run: <python>" / "debug: <python>" become CodeRunner / CodeDebugger requests.
- Otherwise words (lower-cased, whitespace-split, at most 16) go to slots by position,
  each a seeded unit vector of its FNV-1a hash at R0 and R1, γ 0.8, source Translator,
  needs_verify; discourse by the final punctuation.
- Decode: a strand's answer (voltx.engine.strands.strand_answer: its text in S8 R2..R3, or a
  valid number in S8 R0) is printed as is; else every active slot as its nearest known word
  (cosine > 0.5), Agent, Predicate, Patient first. A slot it has no word for is not shown as
  a placeholder: the stub knows only the words it encoded, so such a frame is NoAnswerError
  (exit 69) naming the slots and what would render them.
"""

from __future__ import annotations

import torch

from voltx.engine.frame import MAX_SLOTS, ROLE_NAMES, Discourse, Source, TensorFrame
from voltx.engine.seeded import fnv1a64, seeded_unit_vector
from voltx.engine.strand_requests import encode_request, request_in
from voltx.engine.strands import strand_answer
from voltx.errors import NoAnswerError, UsageError

MAX_INPUT_BYTES = 10_000


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
        request = request_in(text)
        if request is not None:
            return encode_request(request)
        frame = TensorFrame.empty(1)
        words = text.lower().split()[:MAX_SLOTS]
        for i, word in enumerate(words):
            vec = self.word_vector(word)
            for res in (0, 1):
                frame.write(i, res, vec, certainty=0.8, source=int(Source.TRANSLATOR))
            frame.needs_verify[0, i] = True
        stripped = text.strip()
        frame.meta[0].discourse = Discourse.QUERY if stripped.endswith("?") else Discourse.COMMAND if stripped.endswith("!") else Discourse.STATEMENT
        return frame

    def decode(self, frame: TensorFrame, b: int = 0) -> str:
        answer = strand_answer(frame, b)
        if answer is not None:
            return answer
        words: dict[int, str | None] = {}
        for slot in range(MAX_SLOTS):
            for res in (1, 0, 2, 3):
                vec = frame.read(slot, res, b=b)
                if vec is not None:
                    words[slot] = self._nearest(vec)
                    break
        unknown = [f"S{s} ({ROLE_NAMES[s]})" for s, word in words.items() if word is None]
        if unknown:
            raise NoAnswerError(f"the stub translator has no word for slot{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                                "it renders only strand answers and the words of its own input. Pass --checkpoint "
                                "<translator run> (made by `voltx run translator`) to decode with a trained translator.")
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
