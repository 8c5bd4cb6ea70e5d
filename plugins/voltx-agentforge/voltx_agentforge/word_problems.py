"""Arithmetic word problems as ``reasoning`` records: generated offline, or GSM8K from the Hub.

* :class:`ArithWordsGenerator` (``gen:arith_words_gen``): one-step (+, -, x, +1) and two-step
  (+ then -) problems about people and things, numbers up to ``max_number``, ``box``
  problems (+ a fact: each thing comes in boxes of a fixed size, :data:`BOX`, that no question
  states, so a model must have stored it) and ``fact`` problems (the fact alone), deterministic by seed. The splits (train, dev, test)
  are disjoint by construction: a problem's split is a hash of its text, so a dev or test
  problem is never a training problem (whatever the seeds).
* :class:`Gsm8kConverter` (``gsm8k``, Hub ``openai/gsm8k`` config ``main``): question ->
  the number after ``####`` in the answer; the worked lines before it are the steps.

Both make the same record: ``input`` = the question, ``output`` = the answer as digits,
``steps`` = the calculation, ``task`` = the operation (``add`` ...) or ``gsm8k``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import Reasoning
from voltx.errors import UsageError

NAMES = ("Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jen", "Kai", "Lea", "Max", "Nia", "Omar", "Pia")
THINGS = ("apples", "books", "coins", "pens", "cards", "eggs", "shells", "stamps", "marbles", "cookies", "rocks", "kites")
BOX = dict(zip(THINGS, (6, 4, 9, 3, 7, 2, 8, 5, 6, 4, 9, 3)))
"""How many of each thing a box holds: the fact ``box`` problems need and never state."""
MAX_FACTS = 400


def invented_things(n: int) -> dict[str, int]:
    """``n`` invented things ("bofus", "kelars" ...) and how many a box of each holds (2-9), the
    same list every time: more facts than :data:`BOX` for the ``facts`` option (made-up words, so
    nothing in a question hints at the size)."""
    rng, out = random.Random("voltx-agentforge/invented-things"), {}
    while len(out) < n:
        word = "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 3))) + "s"
        if word not in BOX and word not in out:
            out[word] = rng.randint(2, 9)
    return out


def fact_table(facts: int) -> dict[str, int]:
    """The things ``box`` and ``fact`` problems ask about with their box sizes: the first ``facts``
    of :data:`BOX` then :func:`invented_things`."""
    return dict(list({**BOX, **invented_things(max(0, facts - len(BOX)))}.items())[:facts])
OPS = ("add", "sub", "mul", "two", "box", "inc", "fact")
SHARE = 10
"""Of every ``SHARE`` problems (by the hash of their text) one is a test problem and one a dev problem."""


def split_of(text: str) -> str:
    bucket = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % SHARE
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def make_problem(rng: random.Random, op: str, top: int, facts: dict[str, int] | None = None) -> tuple[str, int, str]:
    """(question, answer, calculation) of one problem of kind ``op`` with numbers up to ``top``;
    ``box`` and ``fact`` problems ask about a thing of ``facts`` (default :data:`BOX`)."""
    n, m = rng.sample(NAMES, 2)
    t = rng.choice(THINGS)
    box = BOX if facts is None else facts
    if op in ("box", "fact") and box is not BOX:
        t = rng.choice(list(box))
    if op == "add":
        a, b = rng.randint(1, top), rng.randint(1, top)
        return f"{n} has {a} {t}. {m} gives {n} {b} more. How many {t} does {n} have now?", a + b, f"{a} + {b} = {a + b}"
    if op == "sub":
        a = rng.randint(2, top)
        b = rng.randint(1, a)
        return f"{n} has {a} {t} and gives {b} to {m}. How many {t} does {n} have left?", a - b, f"{a} - {b} = {a - b}"
    if op == "mul":
        a, b = rng.randint(2, max(2, min(9, top // 2))), rng.randint(2, 9)
        return f"{n} buys {a} bags with {b} {t} in each bag. How many {t} does {n} buy?", a * b, f"{a} x {b} = {a * b}"
    if op == "inc":
        a = rng.randint(1, top)
        return f"{n} has {a} {t} and {m} gives {n} one more. How many {t} does {n} have now?", a + 1, f"{a} + 1 = {a + 1}"
    if op == "fact":
        return f"{n} gets a box of {t} from {m}. How many {t} does {n} get?", box[t], f"a box of {t} holds {box[t]}"
    if op == "box":
        a = rng.randint(1, top)
        return (f"{n} has {a} {t} and {m} gives {n} a box of {t}. How many {t} does {n} have now?", a + box[t],
                f"a box of {t} holds {box[t]}; {a} + {box[t]} = {a + box[t]}")
    a, b = rng.randint(1, top), rng.randint(1, top)
    c = rng.randint(1, a + b)
    return (f"{n} has {a} {t}, finds {b} more, then gives {c} to {m}. How many {t} does {n} have now?", a + b - c,
            f"{a} + {b} = {a + b}; {a + b} - {c} = {a + b - c}")


class ArithWordsGenerator(Converter):
    """Generated arithmetic word problems (options: ``count``, ``seed``, ``max_number``, ``ops``)."""

    name = "arith_words_gen"
    formats = ("reasoning",)
    splits = ("train", "dev", "test")
    generator = True
    max_number: int = 20
    """Largest number in a question (products: up to 9 x max(2, min(9, max_number // 2)))."""
    ops: str = "add,sub,mul,two,box"
    """Comma-separated kinds: add, sub, mul, two (add then subtract), box (add a stored fact: :data:`BOX`),
    inc (one more: a function of one number), fact (the stored fact alone: how many a box holds)."""
    facts: int = len(BOX)
    """How many things ``box`` and ``fact`` problems ask about (1-400): the 12 of :data:`BOX`, then
    invented ones (:func:`invented_things`). More facts than a small model's core stores well
    make a stored-fact problem a test of its memory (Cognate's quick preset: 96)."""

    def __init__(self, **options) -> None:
        for key, value in options.items():
            if not hasattr(self, key) or key.startswith("_"):
                raise UsageError(f"{type(self).__name__} has no option {key!r}")
            setattr(self, key, value)

    def kinds(self) -> list[str]:
        kinds = [k.strip() for k in str(self.ops).split(",") if k.strip()]
        bad = [k for k in kinds if k not in OPS]
        if not kinds or bad:
            raise UsageError(f"arith_words_gen: ops must be a comma-separated subset of {','.join(OPS)}, got {self.ops!r}")
        if not isinstance(self.max_number, int) or self.max_number < 2:
            raise UsageError(f"arith_words_gen: max_number must be an integer >= 2, got {self.max_number!r}")
        if not isinstance(self.facts, int) or not 1 <= self.facts <= MAX_FACTS:
            raise UsageError(f"arith_words_gen: facts must be an integer from 1 to {MAX_FACTS}, got {self.facts!r}")
        return kinds

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        if split not in self.splits:
            raise UsageError(f"generator {self.name!r} has no split {split!r}. Splits: {', '.join(self.splits)}.")
        kinds = self.kinds()
        facts = None if self.facts == len(BOX) else fact_table(self.facts)  # the default: problems as before the option
        count = 2000 if self.count is None else int(self.count)
        rng = random.Random(f"{self.seed}/{split}")
        made, tries = 0, 0
        while made < count:
            tries += 1
            if tries > 200 * count + 1000:  # a tiny number space with a large count: say so instead of spinning
                raise UsageError(f"arith_words_gen: only {made} distinct {split} problems found for count={count}; "
                                 "raise max_number or lower count")
            op = kinds[made % len(kinds)]
            question, answer, calc = make_problem(rng, op, self.max_number, facts)
            if split_of(question) != split:
                continue
            made += 1
            yield RawRow({"question": question, "answer": answer, "calc": calc, "op": op}, f"gen:{self.name}/{split}#{made}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        yield Reasoning(input=d["question"], output=str(d["answer"]), steps=[d["calc"]], task=d["op"], source=row.where)


class Gsm8kConverter(Converter):
    """GSM8K (``openai/gsm8k``, config ``main``; splits train and test): question -> final number."""

    name = "gsm8k"
    formats = ("reasoning",)
    hub_name = "openai/gsm8k"
    hub_config = "main"
    splits = ("train", "test")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        question, answer = row.data.get("question"), row.data.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise RowError("expected a non-empty question", "question")
        if not isinstance(answer, str) or "####" not in answer:
            raise RowError("expected an answer ending in '#### <number>'", "answer")
        work, _, final = answer.rpartition("####")
        final = final.strip().replace(",", "")
        if not final:
            raise RowError("nothing after '####'", "answer")
        yield Reasoning(input=question.strip(), output=final, steps=[s.strip() for s in work.strip().splitlines() if s.strip()],
                        task="gsm8k", source=row.where)
