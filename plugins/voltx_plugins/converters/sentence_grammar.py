"""The small English grammar behind the F1 generators (``srl_gen``, ``paraphrase_gen``).

38 predicates with their own agent/patient/instrument/location classes, ~440 nouns in semantic
classes, synonym groups used interchangeably, optional adjectives, location / time / manner /
instrument adjuncts, active and passive voice, fronted adjuncts. :func:`make_frame` draws a
frame (who did what to whom, where, when, how, with what) and :func:`render` writes it as a
sentence with the head word of each role as it appears in the text, like Universal Propositions:
S0 agent, S1 verb, S2 patient, S3 location, S4 time, S5 manner, S6 instrument.
The nouns, adjectives and adverbs are package data (``wordlists/*.txt``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from .generator_base import wordlist


def _groups(spec: str) -> list[tuple[str, ...]]:
    """``"dog/canine/hound cat/feline"`` -> ``[("dog", "canine", "hound"), ("cat", "feline")]``."""
    return [tuple(g.split("/")) for g in spec.split()]


# -- lexicon (nouns, adjectives and adverbs: wordlists/*.txt) ------------------------------------

NOUNS: dict[str, list[tuple[str, ...]]] = {}
MASS: set[str] = set()
for _line in wordlist("nouns"):
    _cls, _, _spec = _line.partition(":")
    NOUNS[_cls] = []
    for _g in _groups(_spec):
        MASS.update(w.rstrip("*") for w in _g if w.endswith("*"))
        NOUNS[_cls].append(tuple(w.rstrip("*") for w in _g))
NAMES = ("Anna", "Tom", "Maria", "Omar", "Lucy", "Ken", "Priya", "Leo", "Sara", "Hugo")

PLACE_CLASSES = ("outdoor", "home", "shop", "public", "water")
# the preposition(s) a place takes ("in" otherwise)
PLACE_PREP = {
    "beach": ("on", "at"), "street": ("on", "in"), "farm": ("on", "at"), "island": ("on",), "square": ("in", "on"),
    "market": ("at", "in"), "station": ("at",), "airport": ("at",), "school": ("at", "in"), "office": ("at", "in"),
    "bakery": ("at", "in"), "restaurant": ("at", "in"), "stadium": ("at", "in"), "zoo": ("at",), "mall": ("at", "in"),
    "store": ("at", "in"), "cafe": ("at", "in"), "supermarket": ("at", "in"), "pharmacy": ("at",), "museum": ("at", "in"),
    "library": ("at", "in"), "hospital": ("at", "in"), "lake": ("at", "on"), "river": ("by", "near"), "pool": ("in", "at"),
    "mountain": ("on",), "hill": ("on",), "playground": ("at", "on"), "campsite": ("at",), "theater": ("at", "in"),
    "gym": ("at", "in"), "harbor": ("at", "in"), "pond": ("in", "by"), "sea": ("in", "by"),
}
ADJS = {cls: _groups(spec) for cls, _, spec in (line.partition(":") for line in wordlist("adjectives"))}
ADJ_FOR = {"animal": "animate", "person": "animate", "infant": "animate", "food": "food", "baked": "food",
           "drink": "food", "event": "event", "document": "document", **{c: "place" for c in PLACE_CLASSES}}
MANNERS = _groups(" ".join(wordlist("manners")))
# time adjuncts: a template around the head word, and the head's synonym group
TIMES = [("{}", ("yesterday",)), ("{}", ("today",)), ("{}", ("recently", "lately")), ("{}", ("earlier",)),
         ("last {}", ("night",)), ("last {}", ("week",)), ("last {}", ("year",)), ("last {}", ("summer",)),
         ("in the {}", ("morning",)), ("in the {}", ("afternoon",)), ("in the {}", ("evening",)),
         ("at {}", ("dawn", "daybreak")), ("at {}", ("noon", "midday")), ("at {}", ("midnight",)),
         ("after {}", ("lunch",)), ("before {}", ("breakfast",)), ("after {}", ("dinner", "supper")),
         ("during the {}", ("storm",)), ("during the {}", ("holiday", "vacation")), ("during the {}", ("winter",)),
         *[("on {}", (d,)) for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")]]
DETS = ("the",) * 6 + ("a",) * 3 + ("my", "your", "his", "her", "our", "their", "this", "that")
MASS_DETS = ("the",) * 6 + ("some", "my", "our", "their", "this", "that")


@dataclass(frozen=True)
class Predicate:
    """One frame: verbs (lemma, past, participle) used interchangeably, and its role classes."""

    frame: str
    verbs: tuple[tuple[str, str, str], ...]
    agent: tuple[str, ...]
    patient: tuple[str, ...] | None = None          # None: intransitive (no patient, no passive)
    instrument: tuple[str, ...] | None = None
    location: tuple[str, ...] | None = PLACE_CLASSES  # None: no location adjunct


def _p(frame: str, verbs: str, agent: str, patient: str | None, instrument: str | None = None,
       location: str | None = "outdoor home shop public") -> Predicate:
    forms = tuple(tuple(v.split(",")) for v in verbs.split())
    forms = tuple(f if len(f) == 3 else (f[0], f[0] + "ed", f[0] + "ed") for f in forms)

    def cls(s):
        return None if s is None else tuple(s.split())

    return Predicate(frame, forms, tuple(agent.split()), cls(patient), cls(instrument), cls(location))


_ANIM = "animal person"
_THINGS = "toy container furniture tool device vehicle clothing valuable"
PREDICATES = [
    _p("Cotheme", "chase,chased,chased pursue,pursued,pursued", _ANIM, "animal person vehicle toy", None, "outdoor"),
    _p("Commerce_buy", "buy,bought,bought purchase,purchased,purchased", "person",
       "food baked drink toy clothing device furniture vehicle plant document", None, "shop public"),
    _p("Commerce_sell", "sell,sold,sold", "person", "food baked drink toy clothing device furniture vehicle plant",
       None, "shop outdoor"),
    _p("Activity_start", "begin,began,begun start,started,started commence,commenced,commenced", "person", "event",
       None, "public outdoor"),
    _p("Cooking_creation", "cook,cooked,cooked prepare,prepared,prepared", "person", "food", "utensil",
       "home shop outdoor"),
    _p("Apply_heat", "bake,baked,baked", "person", "baked", "utensil", "home shop"),
    _p("Ingestion", "eat,ate,eaten consume,consumed,consumed devour,devoured,devoured", _ANIM, "food baked",
       "utensil", "home shop outdoor"),
    _p("Ingestion_drink", "drink,drank,drunk sip,sipped,sipped", _ANIM, "drink", "container", "home shop outdoor"),
    _p("Repairing", "repair,repaired,repaired fix,fixed,fixed mend,mended,mended", "person",
       "vehicle device furniture clothing building toy", "tool", "home outdoor public"),
    _p("Building", "build,built,built construct,constructed,constructed", "person", "building furniture toy", "tool",
       "outdoor home"),
    _p("Perception_experience", "see,saw,seen notice,noticed,noticed spot,spotted,spotted", _ANIM,
       "animal person vehicle building plant", "optic", "outdoor public water"),
    _p("Perception_active", "watch,watched,watched observe,observed,observed", _ANIM, "animal person event vehicle",
       "optic", "outdoor public"),
    _p("Bringing", "carry,carried,carried haul,hauled,hauled", "person", "container furniture food tool toy document",
       "vehicle", "outdoor home public"),
    _p("Delivery", "deliver,delivered,delivered", "person", "container document furniture food baked", "vehicle",
       "outdoor home public shop"),
    _p("Cause_motion", "throw,threw,thrown toss,tossed,tossed hurl,hurled,hurled", "person", "toy food tool",
       None, "outdoor"),
    _p("Cutting", "cut,cut,cut slice,sliced,sliced", "person", "food baked material", "blade", "home shop outdoor"),
    _p("Cleaning", "clean,cleaned,cleaned wash,washed,washed scrub,scrubbed,scrubbed", "person",
       "vehicle furniture utensil container clothing animal", "tool", "home outdoor public"),
    _p("Text_creation", "write,wrote,written compose,composed,composed", "person", "document", "device",
       "home public shop"),
    _p("Reading", "read,read,read peruse,perused,perused", "person", "document", None, "home public shop outdoor"),
    _p("Locating", "find,found,found discover,discovered,discovered locate,located,located", _ANIM,
       "toy container valuable tool animal document", "optic", "outdoor home public"),
    _p("Opening", "open,opened,opened", "person", "container document", "blade tool", "home public"),
    _p("Closing", "close,closed,closed shut,shut,shut", "person", "container document", None, "home public shop"),
    _p("Impact", "hit,hit,hit strike,struck,struck", "person", "toy vehicle building animal", "tool",
       "outdoor"),
    _p("Assistance", "help,helped,helped assist,assisted,assisted aid,aided,aided", "person", "person animal infant",
       None, "outdoor home public shop"),
    _p("Education_teaching", "teach,taught,taught instruct,instructed,instructed tutor,tutored,tutored", "person",
       "person", "document device", "public home"),
    _p("Operate_vehicle", "drive,drove,driven steer,steered,steered", "person", "vehicle", None, "outdoor public"),
    _p("Biting", "bite,bit,bitten nip,nipped,nipped", "animal", "person animal food toy", None, "outdoor home"),
    _p("Catching", "catch,caught,caught capture,captured,captured", _ANIM, "animal toy person", "trap",
       "outdoor water"),
    _p("Feeding", "feed,fed,fed nourish,nourished,nourished", "person", "animal infant", "utensil container",
       "outdoor home public"),
    _p("Theft", "steal,stole,stolen pilfer,pilfered,pilfered", "person", "valuable device vehicle toy food", None,
       "outdoor home public shop"),
    _p("Visiting", "visit,visited,visited", "person", "public outdoor shop", None, None),
    _p("Scrutiny", "examine,examined,examined inspect,inspected,inspected", "person",
       "person animal vehicle document device infant", "optic device", "public home outdoor"),
    _p("Cause_to_fragment", "break,broke,broken smash,smashed,smashed shatter,shattered,shattered", _ANIM,
       "container device toy furniture", "tool", "home outdoor public"),
    _p("Agriculture", "plant,planted,planted sow,sowed,sown", "person", "plant", "tool", "outdoor"),
    _p("Sleep", "sleep,slept,slept doze,dozed,dozed nap,napped,napped", "animal person infant", None, None,
       "outdoor home public"),
    _p("Self_motion", "run,ran,run sprint,sprinted,sprinted dash,dashed,dashed", _ANIM, None, None, "outdoor public"),
    _p("Walking", "walk,walked,walked stroll,strolled,strolled wander,wandered,wandered", _ANIM, None, None,
       "outdoor public shop"),
    _p("Swimming", "swim,swam,swum", _ANIM, None, None, "water outdoor"),
]


# -- frames and rendering -----------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    """A participant: its head's synonym group, class, determiner (None for names) and adjective group."""

    head: tuple[str, ...]
    cls: str
    det: str | None = None
    adj: tuple[str, ...] | None = None
    prep: str | None = None   # locations and instruments
    template: str | None = None  # times


@dataclass(frozen=True)
class Frame:
    pred: Predicate
    agent: Phrase
    patient: Phrase | None = None
    location: Phrase | None = None
    time: Phrase | None = None
    manner: tuple[str, ...] | None = None
    instrument: Phrase | None = None

    def adjuncts(self) -> list[str]:
        return [k for k in ("location", "time", "manner", "instrument") if getattr(self, k) is not None]


def _pick_noun(rng: random.Random, classes: tuple[str, ...], avoid: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], str]:
    while True:
        cls = rng.choice(classes)
        head = rng.choice(NOUNS[cls])
        if head != avoid:
            return head, cls


def _phrase(rng: random.Random, classes: tuple[str, ...], avoid=None, adj_p: float = 0.3, names: bool = True,
            dets: tuple[str, ...] | None = None) -> Phrase:
    if names and "person" in classes and rng.random() < 0.08:
        name = rng.choice(NAMES)
        if (name,) != avoid:
            return Phrase((name,), "person")
    head, cls = _pick_noun(rng, classes, avoid)
    det = rng.choice(MASS_DETS if head[0] in MASS else (dets or DETS))
    adj_cls = ADJ_FOR.get(cls, "thing")
    adj = rng.choice(ADJS[adj_cls]) if rng.random() < adj_p else None
    return Phrase(head, cls, det, adj)


def make_frame(rng: random.Random, pred: Predicate | None = None, min_adjuncts: int = 0) -> Frame:
    """A random frame: a predicate, plausible participants, 0-4 optional adjuncts (at most 6 slots)."""
    pred = pred or rng.choice(PREDICATES)
    agent = _phrase(rng, pred.agent)
    patient = _phrase(rng, pred.patient, avoid=agent.head) if pred.patient else None
    extra: dict = {}
    if pred.location and rng.random() < 0.45:
        loc = _phrase(rng, pred.location, adj_p=0.2, names=False, dets=("the",) * 5 + ("a", "my", "our", "their", "this"))
        extra["location"] = replace(loc, prep=rng.choice(PLACE_PREP.get(loc.head[0], ("in",))))
    if rng.random() < 0.45:
        template, head = rng.choice(TIMES)
        extra["time"] = Phrase(head, "time", template=template)
    if rng.random() < 0.35:
        extra["manner"] = rng.choice(MANNERS)
    if pred.instrument and rng.random() < 0.4:
        extra["instrument"] = replace(_phrase(rng, pred.instrument, adj_p=0.2, names=False), prep="with")
    room = 6 - (3 if pred.patient else 2)
    keys = list(extra)
    rng.shuffle(keys)
    extra = {k: extra[k] for k in keys[:room]}
    if len(extra) < min_adjuncts:  # force one: time is always possible
        template, head = rng.choice(TIMES)
        extra["time"] = Phrase(head, "time", template=template)
    return Frame(pred, agent, patient, **extra)


def _article(word: str) -> str:
    w = word.lower()
    vowel = w[0] in "aeiou" and not w.startswith(("uni", "use", "eu", "one")) or w.startswith(("hour", "honest"))
    return "an" if vowel else "a"


def _np(rng: random.Random, p: Phrase, slot: str | None) -> list[tuple[str, str | None]]:
    """Tokens of a noun phrase; the head token carries the slot."""
    head = rng.choice(p.head)
    toks: list[tuple[str, str | None]] = []
    adj = rng.choice(p.adj) if p.adj else None
    if p.det:
        det = p.det
        if det == "a":
            det = _article(adj or head)
        toks.append((det, None))
    if adj:
        toks.append((adj, None))
    toks.append((head, slot))
    return toks


def render(rng: random.Random, f: Frame, voice: str | None = None, agentless: bool = False,
           front: str | None = "random") -> tuple[str, dict[str, str], str]:
    """``(text, slots, lemma)``: the frame as an English sentence, synonyms and positions drawn from ``rng``.

    ``voice`` active/passive (random if None; intransitives are active); ``agentless`` drops the
    by-phrase of a passive; ``front`` names the adjunct to front ("random": maybe one, None: none).
    """
    lemma, past, part = rng.choice(f.pred.verbs)
    if voice is None:
        voice = "passive" if f.patient and rng.random() < 0.35 else "active"
    if not f.patient:
        voice = "active"
    chunks: dict[str, list[tuple[str, str | None]]] = {}
    if f.location:
        chunks["location"] = [(f.location.prep, None), *_np(rng, f.location, "S3")]
    if f.time:
        pre, _, post = f.time.template.partition("{}")
        chunks["time"] = [(w, None) for w in pre.split()] + [(rng.choice(f.time.head), "S4")] + [(w, None) for w in post.split()]
    if f.manner:
        chunks["manner"] = [(rng.choice(f.manner), "S5")]
    if f.instrument:
        chunks["instrument"] = [("with", None), *_np(rng, f.instrument, "S6")]
    adj_keys = list(chunks)
    if front == "random":
        front = rng.choice(adj_keys) if adj_keys and rng.random() < 0.25 else None
    front = front if front in chunks else None
    pre_manner = "manner" in chunks and front != "manner" and rng.random() < 0.3
    if voice == "active":
        subj = _np(rng, f.agent, "S0")
        core = [(past, "S1")] + (_np(rng, f.patient, "S2") if f.patient else [])
        by = []
    else:
        subj = _np(rng, f.patient, "S2")
        core = [("was", None), (part, "S1")]
        by = [] if agentless else [("by", None), *_np(rng, f.agent, "S0")]
    if pre_manner:
        core = core[:-1] + chunks["manner"] + core[-1:] if voice == "passive" else chunks["manner"] + core
    post = [k for k in ("instrument", "manner", "location", "time") if k in chunks and k != front
            and not (k == "manner" and pre_manner)]
    if rng.random() < 0.4:
        rng.shuffle(post)
    tail = [t for k in post for t in chunks[k]]
    if by and tail and rng.random() < 0.2:
        tail = tail + by  # "The ball was chased in the park by the dog."
    else:
        tail = by + tail
    toks = (chunks[front] + [(",", None)] if front else []) + subj + core + tail
    word, slot = toks[0]
    toks[0] = (word[0].upper() + word[1:], slot)
    text = ""
    for word, _ in toks:
        text += word if word == "," or not text else " " + word
    slots = {s: w for w, s in toks if s}
    return text + ".", dict(sorted(slots.items(), key=lambda kv: int(kv[0][1:]))), lemma
