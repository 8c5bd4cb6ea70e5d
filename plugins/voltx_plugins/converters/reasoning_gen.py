"""Offline ``reasoning`` generators (``voltx data generate``) for phase F3.

Each one makes its rows from ``seed`` and ``count`` in ``read_local(paths, split)`` (paths
are ignored) and is deterministic by seed; ``count=None`` means "the whole split" for SCAN
and a default size for the others.

* :class:`ScanGenerator` - the full SCAN command space of Lake & Baroni (2018), 20,910
  commands, interpreted by the grammar's rules, with the ``simple`` (random 80/20),
  ``length`` (train: <= 22 actions, test: longer) and ``addprim_jump`` (train has ``jump``
  only alone) splits; ``addprim_jump`` train repeats ``jump`` as the published
  tasks_train_addprim_jump.txt does (1,467 of 14,670 lines), ``jump_copies=1`` (generator
  ``scan_addprim_jump_once_gen``) keeps it once;
* :class:`BabiGenerator` - bAbI QA tasks 1-3 (agents moving, picking up and dropping
  objects; 1, 2 or 3 supporting facts, the steps, in the published files' order); ``agents``
  and ``locations`` shrink the world for small tests;
* :class:`KinshipGenerator` - CLUTRR-style kinship chains, train k = 2, 3 and test k = 2, 3, 4
  by default (``train_k``/``test_k``), composed with a relation table; steps = the k - 1
  compositions along the chain, worded as the CLUTRR converter words a proof.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import Reasoning
from voltx.errors import UsageError

from .generator_base import _Generator
from .clutrr import composition_step
from .reasoning import BabiConverter, ScanConverter, scan_interpret


# -- SCAN ----------------------------------------------------------------------------------

SCAN_SPLITS = ("simple", "length", "addprim_jump")
SCAN_LENGTH_CUTOFF = 22
# The published add-primitive train file repeats the lone primitive until it is 10% of the lines:
# 13,203 commands without jump + 1,467 x "jump" = 14,670 lines (tasks_train_addprim_jump.txt).
SCAN_ADDPRIM_SHARE = 0.1


def scan_commands() -> list[str]:
    """Every command of the SCAN grammar (20,910), in a fixed order.

    C -> S | S and S | S after S;  S -> V | V twice | V thrice;
    V -> D | D opposite dir | D around dir ... with D -> U | U dir | turn dir.
    """
    prims = ["walk", "look", "run", "jump"]
    dirs = ["left", "right"]
    verbs = list(prims)
    for u in [*prims, "turn"]:
        verbs += [f"{u} {d}" for d in dirs]
        verbs += [f"{u} opposite {d}" for d in dirs]
        verbs += [f"{u} around {d}" for d in dirs]
    singles = [f"{v}{r}" for v in verbs for r in ("", " twice", " thrice")]
    out = list(singles)
    for conj in ("and", "after"):
        out += [f"{a} {conj} {b}" for a in singles for b in singles]
    return out


class ScanGenerator(_Generator, ScanConverter):
    """The SCAN grammar, split like the benchmark (``scan_split``: simple, length, addprim_jump)."""

    name = "scan_gen"
    splits = ("train", "test")
    scan_split: str = "simple"
    train_fraction: float = 0.8
    jump_copies: int | None = None
    """addprim_jump train: how many times ``jump`` appears; None = as published (10% of the lines)."""

    def split_commands(self, split: str) -> list[str]:
        """The commands of ``split`` (train/test) under ``scan_split``, shuffled by seed."""
        self._check_split(split)
        if self.scan_split not in SCAN_SPLITS:
            raise UsageError(f"scan_split must be one of {', '.join(SCAN_SPLITS)}, got {self.scan_split!r}")
        cmds = scan_commands()
        random.Random(self.seed).shuffle(cmds)
        if self.scan_split == "simple":
            cut = round(len(cmds) * self.train_fraction)
            chosen = cmds[:cut] if split == "train" else cmds[cut:]
        elif self.scan_split == "length":
            short = [len(scan_interpret(c)) <= SCAN_LENGTH_CUTOFF for c in cmds]
            chosen = [c for c, s in zip(cmds, short) if s == (split == "train")]
        else:  # addprim_jump: jump is seen only alone in training
            def has_jump(c: str) -> bool:
                return "jump" in c.split()

            if split == "train":
                chosen = [c for c in scan_commands() if not has_jump(c)]
                copies = self.jump_copies
                if copies is None:
                    copies = round(len(chosen) * SCAN_ADDPRIM_SHARE / (1 - SCAN_ADDPRIM_SHARE))
                if copies < 1:
                    raise UsageError(f"jump_copies must be at least 1, got {copies}")
                chosen += ["jump"] * copies
                random.Random(self.seed).shuffle(chosen)  # the copies spread through the file
            else:
                chosen = [c for c in cmds if has_jump(c) and c != "jump"]
        return chosen if self.count is None else chosen[: self.count]

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for i, cmd in enumerate(self.split_commands(split)):
            yield RawRow({"commands": cmd, "actions": " ".join(scan_interpret(cmd))},
                         f"generated:scan/{self.scan_split}/{split}/seed{self.seed}#{i}")


class ScanSimpleGenerator(ScanGenerator):
    name = "scan_simple_gen"
    scan_split = "simple"


class ScanLengthGenerator(ScanGenerator):
    name = "scan_length_gen"
    scan_split = "length"


class ScanAddprimJumpGenerator(ScanGenerator):
    name = "scan_addprim_jump_gen"
    scan_split = "addprim_jump"


class ScanAddprimJumpOnceGenerator(ScanAddprimJumpGenerator):
    """addprim_jump with ``jump`` once in train (every command once), not the published 1,467 times."""

    name = "scan_addprim_jump_once_gen"
    jump_copies = 1


# -- bAbI tasks 1-3 ------------------------------------------------------------------------

BABI_AGENTS = ("Mary", "John", "Sandra", "Daniel")
BABI_LOCATIONS = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
BABI_OBJECTS = ("apple", "football", "milk")
_MOVES = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
_GRABS = ("got", "picked up", "grabbed", "took")
_DROPS = ("dropped", "put down", "discarded", "left")


def babi_story(rng: random.Random, task: int, questions: int = 5, agents: tuple[str, ...] = BABI_AGENTS,
               locations: tuple[str, ...] = BABI_LOCATIONS) -> dict:
    """One bAbI story in the Hub ``facebook/babi_qa`` shape (ids from 1), its people drawn from
    ``agents`` and their places from ``locations``. Supporting ids are given in the reasoning order
    of the published files: qa2 the object's fact, then its carrier's place; qa3 the object's
    latest fact, the carrier's last place, then the place before (the answer).

    One function, longer than most: the RNG draws happen in one fixed order that every seed's
    stories depend on, and the world state below is shared by every step of the story.
    """
    s = {"id": [], "type": [], "text": [], "supporting_ids": [], "answer": []}
    loc: dict[str, tuple[str, int]] = {}          # agent -> (location, id of the fact that put it there)
    holder: dict[str, str] = {}                   # object -> agent carrying it
    grabbed: dict[str, int] = {}                  # object -> id of the pick-up fact
    dropped: dict[str, tuple[int, int]] = {}      # object -> (id of the pick-up fact, id of the drop that ended it)
    where: dict[str, tuple[str, list[int]]] = {}  # object -> (location, supporting ids) once put down
    history: dict[str, list[tuple[str, list[int]]]] = {o: [] for o in BABI_OBJECTS}

    def add(text: str, kind: int = 0, answer: str = "", support: list[int] | None = None) -> int:
        n = len(s["id"]) + 1
        for k, v in zip(s, (str(n), kind, text, [str(x) for x in support or []], answer)):
            s[k].append(v)
        return n

    def obj_place(o: str) -> tuple[str, list[int]] | None:
        if o in holder:
            a = holder[o]
            return (loc[a][0], [grabbed[o], loc[a][1]]) if a in loc else None
        return where.get(o)

    def note(o: str) -> None:
        place = obj_place(o)
        if place and (not history[o] or history[o][-1][0] != place[0]):
            history[o].append(place)

    def statement() -> None:
        kinds = ["move"] if task == 1 else ["move"] * 6 + ["grab"] * 3 + ["drop"] * 2
        kind = rng.choice(kinds)
        if kind == "grab":
            cands = [(a, o) for a in agents if a in loc for o in BABI_OBJECTS
                     if o not in holder and (o not in where or where[o][0] == loc[a][0])]
            if cands:
                a, o = rng.choice(cands)
                grabbed[o] = add(f"{a} {rng.choice(_GRABS)} the {o} there.")
                holder[o] = a
                where.pop(o, None)
                note(o)
                return
        if kind == "drop" and holder:
            o = rng.choice(sorted(holder))
            a = holder.pop(o)
            n = add(f"{a} {rng.choice(_DROPS)} the {o}.")
            where[o] = (loc[a][0], [n, loc[a][1]])
            dropped[o] = (grabbed[o], n)
            return
        # move (task 3 prefers carriers, so objects travel)
        carriers = sorted(set(holder.values()))
        a = rng.choice(carriers) if task == 3 and carriers and rng.random() < 0.6 else rng.choice(agents)
        here = loc.get(a, ("",))[0]
        dest = rng.choice([x for x in locations if x != here])
        loc[a] = (dest, add(f"{a} {rng.choice(_MOVES)} the {dest}."))
        for o, h in holder.items():
            if h == a:
                note(o)

    def question() -> bool:
        if task == 1:
            cands = sorted(loc)
            if not cands:
                return False
            a = rng.choice(cands)
            add(f"Where is {a}?", 1, loc[a][0], [loc[a][1]])
            return True
        if task == 2:
            cands = [o for o in BABI_OBJECTS if obj_place(o)]
            if not cands:
                return False
            o = rng.choice(cands)
            place, support = obj_place(o)
            add(f"Where is the {o}?", 1, place, support)
            return True
        # the last two places of one carrying (one pick-up): three facts prove it, as in the published task
        cands = [o for o in BABI_OBJECTS if len(history[o]) >= 2 and history[o][-1][1][0] == history[o][-2][1][0]]
        if not cands:
            return False
        o = rng.choice(cands)
        (prev, s1), (last, s2) = history[o][-2:]
        latest = dropped[o][1] if dropped.get(o, (0, 0))[0] == s2[0] else s2[0]
        add(f"Where was the {o} before the {last}?", 1, prev, [latest, s2[1], s1[1]])
        return True

    asked, limit = 0, 80
    while asked < questions and len(s["id"]) < limit:
        for _ in range(2 if task == 1 else rng.randint(2, 4)):
            statement()
        asked += question()
    return s


class BabiGenerator(_Generator, BabiConverter):
    """bAbI QA tasks 1-3 (``task``): ``count`` stories (default 1000) of ``questions`` questions each,
    one record per question (task 1 always asks all of them: ``count * questions`` records).

    ``agents`` and ``locations`` take the first that many of :data:`BABI_AGENTS` and
    :data:`BABI_LOCATIONS`: a small world for quick tests (on task 1 a constant answer scores
    about 1 / ``locations``).
    """

    name = "babi_gen"
    splits = ("train", "test")
    task: int = 1
    questions: int = 5
    agents: int = len(BABI_AGENTS)
    locations: int = len(BABI_LOCATIONS)

    def _world(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        for option, value, low, names in (("agents", self.agents, 1, BABI_AGENTS),
                                          ("locations", self.locations, 2, BABI_LOCATIONS)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= len(names):
                raise UsageError(f"bAbI generator: {option} must be an integer from {low} to {len(names)}, got {value!r}")
        return BABI_AGENTS[: self.agents], BABI_LOCATIONS[: self.locations]

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        if self.task not in (1, 2, 3):
            raise UsageError(f"bAbI generator: task must be 1, 2 or 3, got {self.task!r}")
        if isinstance(self.questions, bool) or not isinstance(self.questions, int) or self.questions < 1:
            raise UsageError(f"bAbI generator: questions must be a positive integer, got {self.questions!r}")
        agents, locations = self._world()
        rng = random.Random(f"babi/{self.task}/{split}/{self.seed}")
        for i in range(1000 if self.count is None else self.count):
            story = babi_story(rng, self.task, self.questions, agents, locations)
            yield RawRow({"task": f"qa{self.task}", "story": story}, f"generated:babi/qa{self.task}/{split}#{i}")


class Babi1Generator(BabiGenerator):
    name = "babi_qa1_gen"
    task = 1


class Babi2Generator(BabiGenerator):
    name = "babi_qa2_gen"
    task = 2


class Babi3Generator(BabiGenerator):
    name = "babi_qa3_gen"
    task = 3


# -- CLUTRR-style kinship chains -------------------------------------------------------------

EDGES = ("parent", "child", "sibling", "spouse")
MAX_HOPS = 10  # CLUTRR tests k up to 10
# COMPOSE[(relation of B to A, relation of C to B)] = relation of C to A. Only unambiguous
# compositions are listed (a parent's child may be oneself, so that one is left out).
COMPOSE = {
    ("parent", "parent"): "grandparent", ("parent", "sibling"): "pibling", ("parent", "spouse"): "parent",
    ("child", "child"): "grandchild", ("child", "sibling"): "child", ("child", "spouse"): "child_in_law",
    ("sibling", "parent"): "parent", ("sibling", "child"): "nibling", ("sibling", "spouse"): "sibling_in_law",
    ("spouse", "parent"): "parent_in_law", ("spouse", "child"): "child", ("spouse", "sibling"): "sibling_in_law",
    ("grandparent", "spouse"): "grandparent", ("grandchild", "sibling"): "grandchild",
    ("pibling", "child"): "cousin", ("pibling", "spouse"): "pibling", ("nibling", "sibling"): "nibling",
    ("cousin", "sibling"): "cousin", ("parent_in_law", "spouse"): "parent_in_law",
}
GENDERED = {
    "parent": ("father", "mother"), "child": ("son", "daughter"), "sibling": ("brother", "sister"),
    "spouse": ("husband", "wife"), "grandparent": ("grandfather", "grandmother"),
    "grandchild": ("grandson", "granddaughter"), "pibling": ("uncle", "aunt"), "nibling": ("nephew", "niece"),
    "cousin": ("cousin", "cousin"), "parent_in_law": ("father-in-law", "mother-in-law"),
    "child_in_law": ("son-in-law", "daughter-in-law"), "sibling_in_law": ("brother-in-law", "sister-in-law"),
}
MALE = ("James", "Robert", "Michael", "David", "William", "Thomas", "Charles", "Daniel", "Matthew", "Anthony",
        "Mark", "Steven", "Paul", "Andrew", "Joshua", "Kevin", "Brian", "George", "Edward", "Ronald")
FEMALE = ("Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
          "Lisa", "Nancy", "Betty", "Sandra", "Ashley", "Emily", "Donna", "Michelle", "Carol", "Amanda")


def kin_word(relation: str, female: bool) -> str:
    return GENDERED[relation][1 if female else 0]


def kinship_chain(rng: random.Random, hops: int) -> dict:
    """A chain P0 -> ... -> P_hops whose every prefix composes: story, question, answer, and steps =
    the hops - 1 compositions from P0 along the chain (:func:`.clutrr.composition_step`), as CLUTRR."""
    while True:
        rels = [rng.choice(EDGES)]
        composed = [rels[0]]
        for _ in range(hops - 1):
            # no spouse of a spouse: that walks back to the person before
            options = [e for e in EDGES if (composed[-1], e) in COMPOSE and not (e == rels[-1] == "spouse")]
            if not options:
                break
            e = rng.choice(options)
            rels.append(e)
            composed.append(COMPOSE[(composed[-1], e)])
        if len(rels) == hops:
            break
    females = [rng.random() < 0.5]
    for r in rels:  # a spouse is of the other sex, everyone else at random
        females.append(not females[-1] if r == "spouse" else rng.random() < 0.5)
    pools = {True: list(FEMALE), False: list(MALE)}
    for pool in pools.values():
        rng.shuffle(pool)
    people = [pools[f].pop() for f in females]
    facts = [f"{people[i + 1]} is {people[i]}'s {kin_word(r, females[i + 1])}." for i, r in enumerate(rels)]
    # triples (h, r, t), "t is the r of h", as CLUTRR's proofs: link i and P0's relation to P_{i+1}
    links = [(people[i], kin_word(r, females[i + 1]), people[i + 1]) for i, r in enumerate(rels)]
    to_first = [(people[0], kin_word(c, females[i + 1]), people[i + 1]) for i, c in enumerate(composed)]
    steps = [composition_step(to_first[i - 1], links[i], to_first[i]) for i in range(1, hops)]
    story = list(facts)
    rng.shuffle(story)
    answer = kin_word(composed[-1], females[-1])
    return {"story": " ".join(story), "question": f"How is {people[-1]} related to {people[0]}?",
            "answer": answer, "steps": steps, "hops": hops, "relations": "-".join(rels)}


def _chain_lengths(option: str, value) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_HOPS for k in value)):
        raise UsageError(f"kinship generator: {option} must be chain lengths from 1 to {MAX_HOPS} like [2, 3], got {value!r}")
    return sorted(set(value))


class KinshipGenerator(_Generator, Converter):
    """CLUTRR-style kinship chains, ``count`` rows (default 1000): chain lengths k drawn from
    ``train_k`` for the train split and ``test_k`` for the test split (CLUTRR's systematic
    generalisation setting: train k = 2, 3; test k = 2, 3, 4). Options may be a list or one k."""

    name = "kinship_gen"
    formats = ("reasoning",)
    splits = ("train", "test")
    train_k: tuple[int, ...] = (2, 3)
    test_k: tuple[int, ...] = (2, 3, 4)

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        lengths = _chain_lengths(f"{split}_k", self.train_k if split == "train" else self.test_k)
        rng = random.Random(f"kinship/{split}/{self.seed}")
        for i in range(1000 if self.count is None else self.count):
            row = kinship_chain(rng, rng.choice(lengths))
            yield RawRow(row, f"generated:kinship/{split}#{i}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        for field in ("story", "question", "answer"):
            if not isinstance(d.get(field), str) or not d[field].strip():
                raise RowError("expected a non-empty string", field)
        k = d.get("hops", len(d.get("steps") or []) + 1)
        yield Reasoning(input=f"{d['story']} {d['question']}", output=d["answer"], steps=list(d.get("steps") or []),
                        task=f"kinship_{k}hop", meta={"k": k, "relations": d.get("relations", "")}, source=row.where)
