"""``concepts_gen`` (``triples``): a built-in ConceptNet-style knowledge base, an offline stand-in
for ConceptNet in phase F2 (world knowledge).

IsA, UsedFor, CapableOf, AtLocation, HasProperty, PartOf, HasA, Desires, MadeOf, Synonym and
Antonym triples built from the concept tables in ``wordlists/`` (animals, foods, objects, people,
places, body parts, category parents, antonyms, synonyms), with a test hold-out of ~10% whose
heads and tails all occur in train.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import Triple
from voltx.errors import UsageError

from .generator_base import _Generator, wordlist


def _table(name: str, ncols: int) -> list[list[list[str]]]:
    """The rows of ``wordlists/<name>.txt``: one concept a line, "|" between columns, ";" between
    values, "-" for none."""
    rows = []
    for line in wordlist(name):
        cols = [c.strip() for c in line.split("|")]
        if len(cols) != ncols:
            raise ValueError(f"knowledge table row needs {ncols} columns: {line!r}")
        rows.append([[v.strip() for v in c.split(";") if v.strip() and v.strip() != "-"] for c in cols])
    return rows


def knowledge_base() -> list[tuple[str, str, str]]:
    """Every (head, relation, tail) of the built-in KB, deduplicated, in a fixed order."""
    out: list[tuple[str, str, str]] = []

    def add(h: str, r: str, ts: list[str]) -> None:
        out.extend((h, r, t) for t in ts)

    def parts(h: str, ts: list[str]) -> None:
        add(h, "HasA", ts)
        out.extend((t, "PartOf", h) for t in ts)

    for (name,), isa, capable, prop, hasa, loc, desires in _table("animals", 7):
        add(name, "IsA", isa), add(name, "CapableOf", capable), add(name, "HasProperty", prop)
        parts(name, hasa), add(name, "AtLocation", loc), add(name, "Desires", desires)
    for (name,), isa, prop, loc, used, hasa, made in _table("foods", 7):
        add(name, "IsA", isa), add(name, "HasProperty", prop), add(name, "AtLocation", loc)
        add(name, "UsedFor", used), parts(name, hasa), add(name, "MadeOf", made)
    for (name,), isa, used, prop, hasa, loc, made in _table("objects", 7):
        add(name, "IsA", isa), add(name, "UsedFor", used), add(name, "HasProperty", prop)
        parts(name, hasa), add(name, "AtLocation", loc), add(name, "MadeOf", made)
    for (name,), isa, capable, loc, desires in _table("people", 5):
        add(name, "IsA", isa), add(name, "CapableOf", capable), add(name, "AtLocation", loc), add(name, "Desires", desires)
    for (name,), isa, used, hasa, loc in _table("places", 5):
        add(name, "IsA", isa), add(name, "UsedFor", used), parts(name, hasa)
        add(name, "PartOf" if isa == ["room"] else "AtLocation", loc)
    for (name,), used, partof, hasa in _table("body", 4):
        add(name, "IsA", ["body part"]), add(name, "UsedFor", used), add(name, "PartOf", partof), parts(name, hasa)
    add("body part", "PartOf", ["body"])
    for pair in wordlist("category_parents"):
        *child, parent = pair.split()
        out.append((" ".join(child), "IsA", parent))
    for pair in wordlist("antonyms"):
        a, b = pair.split()
        out += [(a, "Antonym", b), (b, "Antonym", a)]
    heads = {h for h, _, _ in out}
    for group in wordlist("synonyms"):
        base, *syns = group.split()
        base_triples = [(r, t) for h, r, t in out if h == base and r != "Synonym"]
        for s in syns:
            out += [(base, "Synonym", s), (s, "Synonym", base)]
            if s not in heads:
                out += [(s, r, t) for r, t in base_triples if t != s]
        for s in syns:
            out += [(s, "Synonym", o) for o in syns if o != s]
    seen, uniq = set(), []
    for t in out:
        if t not in seen and t[0] != t[2]:
            seen.add(t)
            uniq.append(t)
    return uniq


def split_knowledge_base(seed: int, test_fraction: float = 0.1) -> tuple[list, list]:
    """(train, test) triples: a seeded ~10% hold-out, every test head and tail kept in train."""
    triples = knowledge_base()
    rng = random.Random(f"concepts/{seed}")
    order = list(range(len(triples)))
    rng.shuffle(order)
    uses = Counter(x for h, _, t in triples for x in (h, t))
    target = round(len(triples) * test_fraction)
    test_ids: set[int] = set()
    for i in order:
        if len(test_ids) >= target:
            break
        h, _, t = triples[i]
        if uses[h] > 1 and uses[t] > 1:
            uses[h] -= 1
            uses[t] -= 1
            test_ids.add(i)
    train = [triples[i] for i in order if i not in test_ids]
    test = [triples[i] for i in order if i in test_ids]
    return train, test


class ConceptsGenerator(_Generator, Converter):
    """Commonsense triples from the built-in KB (F2 world knowledge); ``count`` caps them (default: the whole split)."""

    name = "concepts_gen"
    formats = ("triples",)
    splits = ("train", "test")
    test_fraction: float = 0.1

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        if not 0 < self.test_fraction < 1:
            raise UsageError(f"concepts generator: test_fraction must be between 0 and 1, got {self.test_fraction!r}")
        train, test = split_knowledge_base(self.seed, self.test_fraction)
        chosen = train if split == "train" else test
        for i, (h, r, t) in enumerate(chosen if self.count is None else chosen[: self.count]):
            yield RawRow({"head": h, "relation": r, "tail": t}, f"generated:concepts/{split}#{i}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Triple]:
        d = row.data
        for field in ("head", "relation", "tail"):
            if not isinstance(d.get(field), str) or not d[field].strip():
                raise RowError("expected a non-empty string", field)
        yield Triple(head=d["head"], relation=d["relation"], tail=d["tail"], weight=1.0, source=row.where)
