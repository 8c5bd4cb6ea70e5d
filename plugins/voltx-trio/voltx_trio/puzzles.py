"""The Trio document's pure logic puzzles, generated, with disjoint train/dev/test splits.

The document trained on ``{"input": "P→Q,P?Q", "output": "●"}`` pairs (modus ponens, universal
instantiation, conjunction elimination ...), 6,650 of them "generated in ~0.01 seconds". This
module enumerates every puzzle of its rule families over a fixed alphabet and assigns each
distinct input to one split by a hash of its text, so held-out puzzles are never seen in
training. Answers are ● (follows), ○ (contradicted) and ◐ (undetermined: the classic fallacies
and unrelated premises), so a model must read the premises: the best constant answer is the
baseline. *Hybrid* records scaffold the same puzzle in natural language (the document's 60/40
hybrid/pure mix; "composition from existing features") and answer in the role's own format
(:mod:`voltx_trio.roles`). Pure Python: the quick preset runs offline.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from typing import Iterator

FOLLOWS, CONTRADICTED, UNDETERMINED = "●", "○", "◐"
VERDICTS = (FOLLOWS, CONTRADICTED, UNDETERMINED)
PROPS = "PQRSTUVWYZ"
PREDICATES = "FGH"
CONSTANTS = "abcde"
SPLITS = ("train", "dev", "test")

# (rule, input pattern, verdict, why): {A} {B} {C} are distinct propositions.
PROP_RULES = (
    ("modus ponens", "{A}→{B},{A}?{B}", FOLLOWS, "{B} follows from {A}→{B} and {A}"),
    ("modus ponens", "{A}→{B},{A}?¬{B}", CONTRADICTED, "{A}→{B} and {A} give {B}, not ¬{B}"),
    ("affirming the consequent", "{A}→{B},{B}?{A}", UNDETERMINED, "{B} does not give back {A}"),
    ("modus tollens", "{A}→{B},¬{B}?¬{A}", FOLLOWS, "¬{B} with {A}→{B} rules out {A}"),
    ("denying the antecedent", "{A}→{B},¬{A}?¬{B}", UNDETERMINED, "¬{A} says nothing of {B}"),
    ("conjunction elimination", "{A}∧{B}?{A}", FOLLOWS, "{A}∧{B} contains {A}"),
    ("conjunction elimination", "{A}∧{B}?{B}", FOLLOWS, "{A}∧{B} contains {B}"),
    ("conjunction elimination", "{A}∧{B}?¬{A}", CONTRADICTED, "{A}∧{B} asserts {A}"),
    ("conjunction introduction", "{A},{B}?{A}∧{B}", FOLLOWS, "{A} and {B} together give {A}∧{B}"),
    ("disjunctive syllogism", "{A}∨{B},¬{A}?{B}", FOLLOWS, "one of {A},{B} holds and ¬{A}"),
    ("disjunction", "{A}∨{B}?{A}", UNDETERMINED, "{A}∨{B} may hold by {B} alone"),
    ("double negation", "¬¬{A}?{A}", FOLLOWS, "¬¬{A} is {A}"),
    ("contradiction", "{A}?¬{A}", CONTRADICTED, "{A} excludes ¬{A}"),
    ("unrelated premise", "{A}→{B},{C}?{B}", UNDETERMINED, "{C} is not {A}, so {A}→{B} is idle"),
    ("hypothetical syllogism", "{A}→{B},{B}→{C},{A}?{C}", FOLLOWS, "{A}→{B}→{C} chains to {C}"),
)
# {F} a predicate, {c} a constant.
QUANT_RULES = (
    ("universal instantiation", "∀x:{F}(x),{c}?{F}({c})", FOLLOWS, "what holds for all x holds for {c}"),
    ("universal instantiation", "∀x:{F}(x),{c}?¬{F}({c})", CONTRADICTED, "∀x:{F}(x) gives {F}({c})"),
    ("existential", "∃x:{F}(x),{c}?{F}({c})", UNDETERMINED, "some x need not be {c}"),
)

_SCAFFOLD = {  # natural-language scaffolding of a hybrid record, per rule family
    "modus ponens": "If the first premise holds, its consequence does.",
    "affirming the consequent": "Check whether the conclusion really comes back to the premise.",
    "modus tollens": "A false consequence denies its condition.",
    "denying the antecedent": "Ask whether a false condition decides the consequence.",
    "conjunction elimination": "An 'and' asserts both of its parts.",
    "conjunction introduction": "Two facts together make their 'and'.",
    "disjunctive syllogism": "An 'or' with one side ruled out leaves the other.",
    "disjunction": "An 'or' does not say which side holds.",
    "double negation": "Not-not is yes.",
    "contradiction": "A fact cannot hold with its negation.",
    "unrelated premise": "Only a matching condition triggers an implication.",
    "hypothetical syllogism": "Implications chain.",
    "universal instantiation": "What holds for everything holds for each thing.",
    "existential": "Something having a property does not name which thing.",
}


def _fill(text: str, names: dict[str, str]) -> str:
    return text.format(**names)


def enumerate_puzzles() -> Iterator[dict]:
    """Every distinct puzzle: ``{"input", "output", "rule", "why"}`` (deterministic order)."""
    for rule, pattern, verdict, why in PROP_RULES:
        width = 3 if "{C}" in pattern or "{C}" in why else 2 if "{B}" in pattern else 1
        for letters in itertools.permutations(PROPS, width):
            names = dict(zip("ABC", letters))
            yield {"input": _fill(pattern, names), "output": verdict, "rule": rule, "why": _fill(why, names)}
    for rule, pattern, verdict, why in QUANT_RULES:
        for f, c in itertools.product(PREDICATES, CONSTANTS):
            names = {"F": f, "c": c}
            yield {"input": _fill(pattern, names), "output": verdict, "rule": rule, "why": _fill(why, names)}


def split_of(text: str, fractions: tuple[float, float] = (0.8, 0.1)) -> str:
    """train / dev / test by a hash of the puzzle's text: stable across runs and machines."""
    h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64
    return "train" if h < fractions[0] else "dev" if h < fractions[0] + fractions[1] else "test"


def puzzles(split: str) -> list[dict]:
    """The distinct puzzles of one split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [p for p in enumerate_puzzles() if split_of(p["input"]) == split]


def sample(split: str, count: int, seed: int) -> list[dict]:
    """``count`` puzzles of ``split`` with the three verdicts in equal shares (so no constant
    answer is right more than about a third of the time), drawn with a seeded RNG; a puzzle
    repeats only once its verdict's pool is used up."""
    rng = random.Random(seed)
    pools = {v: [p for p in puzzles(split) if p["output"] == v] for v in VERDICTS}
    for pool in pools.values():
        rng.shuffle(pool)
    out = []
    for i in range(count):
        pool = pools[VERDICTS[i % len(VERDICTS)]]
        out.append(pool[(i // len(VERDICTS)) % len(pool)])
    rng.shuffle(out)
    return out


def pure_record(p: dict) -> dict:
    """The document's pure record: notation in, one verdict symbol out."""
    return {"input": p["input"], "output": p["output"], "source": "gen:pure"}


def hybrid_record(p: dict, role: str) -> dict:
    """The same puzzle scaffolded in words, answered in ``role``'s format."""
    from voltx_trio.roles import ROLES

    text = f"{p['rule'].capitalize()}. {_SCAFFOLD[p['rule']]} Does the query follow? {p['input']}"
    return {"input": text, "output": ROLES[role].answer(p["output"], p["why"]), "source": "gen:hybrid"}


def generate(kind: str, role: str, split: str, count: int, seed: int) -> list[dict]:
    """``count`` instruction records of ``kind`` (``pure`` or ``hybrid``) from ``split``."""
    chosen = sample(split, count, seed)
    if kind == "pure":
        return [pure_record(p) for p in chosen]
    if kind == "hybrid":
        return [hybrid_record(p, role) for p in chosen]
    raise ValueError(f"generator kind must be pure or hybrid, got {kind!r}")
