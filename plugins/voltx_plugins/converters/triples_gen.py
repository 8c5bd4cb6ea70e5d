"""``concepts_gen`` (``triples``): a built-in ConceptNet-style knowledge base, an offline stand-in
for ConceptNet in phase F2 (world knowledge).

IsA, UsedFor, CapableOf, AtLocation, HasProperty, PartOf, HasA, Desires, MadeOf, Synonym and
Antonym triples built from the concept tables in ``wordlists/`` (animals, foods, objects, people,
places, body parts, category parents, antonyms, synonyms), split into train / dev / test: ~10% of
the triples each for dev and test with heads and tails that occur in train, plus every triple of
~5% of the concepts, which no training triple names (:func:`split_knowledge_base`).
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


def split_knowledge_base(seed: int, test_fraction: float = 0.1) -> dict[str, list]:
    """``{"train", "dev", "test"}`` triples, seeded.

    First ``test_fraction / 2`` of the concepts are held out entirely: every triple naming one
    goes to dev (half of those concepts) or test (the other half), so no training triple names
    them (F2 measures its codebook on concepts it never trained on). Then ``test_fraction`` of
    the remaining triples each go to dev and test with every head and tail kept in train (bind
    and analogies ask about known concepts). Only concepts named by 2 to 12 triples are held
    out: the category parents and hubs stay, so the rest of the KB keeps its shape.
    """
    triples = knowledge_base()
    rng = random.Random(f"concepts/{seed}")
    uses = Counter(x for h, _, t in triples for x in (h, t))
    pool = sorted(c for c, n in uses.items() if 2 <= n <= 12)
    unseen = rng.sample(pool, min(len(pool), round(len(uses) * test_fraction / 2)))
    unseen_split = {c: ("dev", "test")[i % 2] for i, c in enumerate(unseen)}
    out: dict[str, list] = {"train": [], "dev": [], "test": []}
    rest = []
    for tr in triples:
        split = unseen_split.get(tr[0]) or unseen_split.get(tr[2])
        if split:
            out[split].append(tr)
        else:
            rest.append(tr)
    order = list(range(len(rest)))
    rng.shuffle(order)
    uses = Counter(x for h, _, t in rest for x in (h, t))
    target = round(len(rest) * test_fraction)
    held: dict[int, str] = {}
    for i in order:
        if len(held) >= 2 * target:
            break
        h, _, t = rest[i]
        if uses[h] > 1 and uses[t] > 1:
            uses[h] -= 1
            uses[t] -= 1
            held[i] = ("dev", "test")[len(held) % 2]
    for i in order:
        out[held.get(i, "train")].append(rest[i])
    return out


class ConceptsGenerator(_Generator, Converter):
    """Commonsense triples from the built-in KB (F2 world knowledge); ``count`` caps them (default: the whole split)."""

    name = "concepts_gen"
    formats = ("triples",)
    splits = ("train", "dev", "test")
    test_fraction: float = 0.1

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        if not 0 < self.test_fraction < 1:
            raise UsageError(f"concepts generator: test_fraction must be between 0 and 1, got {self.test_fraction!r}")
        chosen = split_knowledge_base(self.seed, self.test_fraction)[split]
        for i, (h, r, t) in enumerate(chosen if self.count is None else chosen[: self.count]):
            yield RawRow({"head": h, "relation": r, "tail": t}, f"generated:concepts/{split}#{i}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Triple]:
        d = row.data
        for field in ("head", "relation", "tail"):
            if not isinstance(d.get(field), str) or not d[field].strip():
                raise RowError("expected a non-empty string", field)
        yield Triple(head=d["head"], relation=d["relation"], tail=d["tail"], weight=1.0, source=row.where)
