"""``paraphrase_gen`` (``paraphrase``): STS/PAWS-style sentence pairs from :mod:`.sentence_grammar`,
an offline stand-in for STS-B/PAWS in phase F1.

5/1 the same frame rendered differently, 4/1 one adjunct dropped, 2-2.5/0 hard negatives (agent
and patient swapped, or another predicate with the same participants), 0-1/0 unrelated frames;
about 40% positive.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import Paraphrase

from .generator_base import _Generator
from .sentence_grammar import PREDICATES, Frame, make_frame, render


PAIR_KINDS = (("same", 0.25), ("drop", 0.15), ("swap", 0.18), ("other_pred", 0.17), ("unrelated", 0.25))


def _other_predicate(rng: random.Random, f: Frame) -> Frame | None:
    """The same participants under a different predicate that accepts them, or None."""
    options = [p for p in PREDICATES if p.frame != f.pred.frame and f.agent.cls in p.agent
               and (p.patient is None) == (f.patient is None) and (f.patient is None or f.patient.cls in p.patient)]
    if not options:
        return None
    p = rng.choice(options)
    instrument = f.instrument if p.instrument and f.instrument and f.instrument.cls in p.instrument else None
    location = f.location if p.location else None
    return replace(f, pred=p, instrument=instrument, location=location)


def paraphrase_record(rng: random.Random) -> dict:
    """One STS/PAWS-style pair (see the module docstring for the scores)."""
    r, kind = rng.random(), PAIR_KINDS[-1][0]
    for k, w in PAIR_KINDS:
        if r < w:
            kind = k
            break
        r -= w
    if kind == "same":
        f = make_frame(rng)
        a = render(rng, f)[0]
        b = a
        for attempt in range(20):
            b = render(rng, f, voice=None if attempt < 10 else ("passive" if f.patient and "passive" not in a else "active"),
                       front=None if attempt >= 10 and "," in a else "random")[0]
            if b != a:
                break
        if b == a:
            kind = "drop"
        else:
            return {"a": a, "b": b, "score": 5.0, "label": 1, "kind": kind}
    if kind == "drop":
        f = make_frame(rng, min_adjuncts=1)
        dropped = replace(f, **{rng.choice(f.adjuncts()): None})
        a, b = render(rng, f)[0], render(rng, dropped)[0]
        if rng.random() < 0.5:
            a, b = b, a
        return {"a": a, "b": b, "score": 4.0, "label": 1, "kind": kind}
    if kind == "swap":
        for _ in range(30):
            f = make_frame(rng)
            if f.patient and f.patient.cls in f.pred.agent and f.agent.cls in f.pred.patient:
                g = replace(f, agent=f.patient, patient=f.agent)
                return {"a": render(rng, f)[0], "b": render(rng, g)[0], "score": 2.5, "label": 0, "kind": kind}
        kind = "other_pred"
    if kind == "other_pred":
        while True:
            f = make_frame(rng)
            g = _other_predicate(rng, f)
            if g is not None:
                return {"a": render(rng, f)[0], "b": render(rng, g)[0], "score": 2.0, "label": 0, "kind": kind}
    f, g = make_frame(rng), make_frame(rng)
    heads = {p.head for p in (f.agent, f.patient, f.location, f.instrument) if p}
    shared = g.pred.frame == f.pred.frame or any(p and p.head in heads for p in (g.agent, g.patient, g.location, g.instrument))
    return {"a": render(rng, f)[0], "b": render(rng, g)[0], "score": 1.0 if shared else 0.0, "label": 0, "kind": "unrelated"}


class ParaphraseGenerator(_Generator, Converter):
    """Paraphrase pairs from the grammar (F1): ``count`` pairs
    (default 5000 train / 1000 dev / 1000 test; each split its own seeded stream: dev for tuning and
    per-epoch figures, test judged once), ~40% positive."""

    name = "paraphrase_gen"
    formats = ("paraphrase",)
    splits = ("train", "dev", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        rng = random.Random(f"paraphrase/{split}/{self.seed}")
        n = (5000 if split == "train" else 1000) if self.count is None else self.count
        for i in range(n):
            yield RawRow(paraphrase_record(rng), f"generated:paraphrase/{split}#{i}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Paraphrase]:
        d = row.data
        for field in ("a", "b"):
            if not isinstance(d.get(field), str) or not d[field].strip():
                raise RowError("expected a non-empty string", field)
        yield Paraphrase(a=d["a"], b=d["b"], score=float(d["score"]), label=int(d["label"]), source=row.where)
