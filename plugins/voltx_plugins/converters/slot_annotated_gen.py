"""``srl_gen`` (``slot_annotated``): sentences of :mod:`.sentence_grammar` with their role slots,
an offline stand-in for FrameNet/PropBank in phase F1 (lexical grounding)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import SlotAnnotated

from .generator_base import _Generator
from .sentence_grammar import make_frame, render


def srl_record(rng: random.Random) -> dict:
    f = make_frame(rng)
    text, slots, lemma = render(rng, f, agentless=rng.random() < 0.1)
    return {"text": text, "slots": slots, "predicate": lemma, "frame": f.pred.frame}


class SrlGenerator(_Generator, Converter):
    """Slot-annotated sentences from the grammar (F1 lexical grounding): ``count`` rows
    (default 5000 train / 1000 dev / 1000 test; each split its own seeded stream: dev for tuning and
    per-epoch figures, test judged once)."""

    name = "srl_gen"
    formats = ("slot_annotated",)
    splits = ("train", "dev", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        rng = random.Random(f"srl/{split}/{self.seed}")
        n = (5000 if split == "train" else 1000) if self.count is None else self.count
        for i in range(n):
            yield RawRow(srl_record(rng), f"generated:srl/{split}#{i}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[SlotAnnotated]:
        d = row.data
        if not isinstance(d.get("text"), str) or not d["text"].strip():
            raise RowError("expected a non-empty string", "text")
        if not isinstance(d.get("slots"), dict) or not d["slots"]:
            raise RowError("expected a non-empty object", "slots")
        yield SlotAnnotated(text=d["text"], slots=dict(d["slots"]), frame=d.get("frame"), predicate=d.get("predicate"),
                            source=row.where)
