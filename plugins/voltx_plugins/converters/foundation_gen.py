"""Offline foundation generators (``voltx data generate``): F1 and F2 data with no download.

Phases F1 (lexical grounding) and F2 (world knowledge) of the Volt X training plan train on
slot-annotated sentences, paraphrase pairs and commonsense triples. When no real data is given
(FrameNet/PropBank, STS-B/PAWS, ConceptNet), these generators make stand-ins offline, from
``seed`` and ``count``, deterministically; ``train`` and ``test`` use different RNG streams.

* :class:`SrlGenerator` (``srl_gen``, ``slot_annotated``) - English sentences from a small
  grammar (38 predicates with their own agent/patient/instrument/location classes, ~440 nouns
  in semantic classes, synonym groups used interchangeably, optional adjectives, location /
  time / manner / instrument adjuncts, active and passive voice, fronted adjuncts), annotated
  with the head word of each role as it appears in the text, like Universal Propositions:
  S0 agent, S1 verb, S2 patient, S3 location, S4 time, S5 manner, S6 instrument;
* :class:`ParaphraseGenerator` (``paraphrase_gen``, ``paraphrase``) - STS/PAWS-style pairs
  from the same grammar: 5/1 the same frame rendered differently, 4/1 one adjunct dropped,
  2-2.5/0 hard negatives (agent and patient swapped, or another predicate with the same
  participants), 0-1/0 unrelated frames; about 40% positive;
* :class:`ConceptsGenerator` (``concepts_gen``, ``triples``) - a built-in ConceptNet-style
  knowledge base (IsA, UsedFor, CapableOf, AtLocation, HasProperty, PartOf, HasA, Desires,
  MadeOf, Synonym, Antonym) built from structured tables, with a test hold-out of ~10% whose
  heads and tails all occur in train.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import Paraphrase, SlotAnnotated, Triple
from voltx.errors import UsageError

from .generators import _Generator


def _groups(spec: str) -> list[tuple[str, ...]]:
    """``"dog/canine/hound cat/feline"`` -> ``[("dog", "canine", "hound"), ("cat", "feline")]``."""
    return [tuple(g.split("/")) for g in spec.split()]


# -- lexicon ----------------------------------------------------------------------------------
# Nouns by semantic class; "a/b" = a synonym group (used interchangeably), "x*" = a mass noun
# (no "a"). A word may sit in more than one class (house is a building and a place).

_NOUN_SPEC = {
    "animal": "dog/canine/hound cat/feline horse/steed mouse rabbit/bunny fox wolf bear cow pig/hog sheep goat "
              "duck owl lion tiger monkey squirrel deer frog parrot chicken/hen elephant donkey hamster turtle",
    "person": "chef/cook child/kid doctor/physician teacher/instructor student/pupil farmer nurse mechanic baker "
              "artist/painter writer/author pilot driver carpenter thief/robber/burglar neighbor friend/pal "
              "customer/client soldier sailor lawyer/attorney singer musician scientist/researcher gardener plumber "
              "waiter/server boy girl woman/lady king queen officer/policeman mailman/postman courier tourist/traveler "
              "coach/trainer athlete patient",
    "infant": "baby/infant toddler",
    "food": "pasta* soup* apple banana orange sandwich rice* cheese* salad steak egg carrot potato burger/hamburger "
            "meat* fish* chocolate* candy* honey* stew* omelet/omelette pear grape cherry lemon strawberry sausage "
            "corn* pancake noodle tomato",
    "baked": "cake pie bread* cookie/biscuit pizza muffin pastry croissant",
    "drink": "water* milk* coffee* tea* juice* wine* beer* lemonade* soda* cocoa* smoothie",
    "tool": "hammer/mallet shovel/spade wrench/spanner screwdriver drill brush rake hoe chisel crowbar trowel",
    "blade": "knife/blade cleaver razor saw axe/hatchet sword",
    "utensil": "spoon fork pan/skillet pot ladle spatula whisk grill kettle wok",
    "device": "phone/telephone computer radio television/tv lamp clock camera printer tablet",
    "optic": "telescope microscope magnifier flashlight/torch lantern",
    "vehicle": "car/automobile truck/lorry bus bicycle/bike boat ship train plane/airplane/aircraft "
               "motorcycle/motorbike van tractor taxi/cab scooter cart helicopter",
    "toy": "ball kite doll puzzle balloon frisbee robot marble",
    "container": "box bag/sack basket bottle cup/mug bowl jar bucket/pail vase plate/dish suitcase "
                 "package/parcel envelope barrel backpack/rucksack",
    "furniture": "chair/seat table desk bench bed sofa/couch shelf cabinet/cupboard stool wardrobe",
    "document": "letter book report story/tale poem note/memo essay map song menu recipe novel article "
                "diary/journal newspaper",
    "clothing": "hat coat/jacket shoe shirt scarf dress glove sock boot sweater/jumper belt skirt",
    "plant": "flower tree seed bush/shrub rose tulip sunflower cactus oak pine vine",
    "building": "house fence wall bridge shed tower cabin/hut barn roof nest sandcastle",
    "valuable": "ring necklace wallet/purse coin jewel/gem diamond watch painting/picture crown",
    "material": "wood*/timber* paper* cloth*/fabric* rope wire cardboard* leather*",
    "trap": "net trap cage lasso/lariat",
    "event": "lesson meeting game/match journey/trip project concert/show race party/celebration performance "
             "speech/talk exam/examination search dance festival ceremony tour parade debate",
    "outdoor": "park garden/yard forest beach/shore field/meadow street/road lake river mountain hill farm "
               "playground campsite jungle desert island valley square/plaza",
    "home": "house kitchen bedroom basement attic garage hallway/corridor cottage apartment",
    "shop": "market store/shop mall bakery restaurant/diner cafe supermarket pharmacy/drugstore",
    "public": "school classroom library hospital/clinic office station airport museum stadium/arena zoo "
              "theater/theatre hall city town village church gym/gymnasium laboratory/lab factory harbor/port",
    "water": "lake river pool pond sea/ocean",
}
NOUNS: dict[str, list[tuple[str, ...]]] = {}
MASS: set[str] = set()
for _cls, _spec in _NOUN_SPEC.items():
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
ADJ_SPEC = {
    "animate": "big/large small/little old young hungry/starving tired/weary happy/glad clever/smart brave/courageous "
               "friendly/kind angry/furious lazy famous/renowned",
    "food": "fresh delicious/tasty hot cold sweet spicy big/large small/little warm",
    "thing": "big/large small/little old new red blue green yellow black white heavy shiny dirty/filthy clean wooden "
             "beautiful/lovely strange/odd",
    "place": "big/large small/little old quiet/peaceful busy/crowded dark beautiful/lovely nearby",
    "event": "long/lengthy short/brief important/crucial big/large exciting/thrilling boring/dull",
    "document": "long/lengthy short/brief old new important/crucial strange/odd funny/amusing",
}
ADJS = {k: _groups(v) for k, v in ADJ_SPEC.items()}
ADJ_FOR = {"animal": "animate", "person": "animate", "infant": "animate", "food": "food", "baked": "food",
           "drink": "food", "event": "event", "document": "document", **{c: "place" for c in PLACE_CLASSES}}
MANNERS = _groups("quickly/rapidly/swiftly slowly carefully/cautiously quietly/silently happily/cheerfully "
                  "loudly/noisily gently/softly eagerly/keenly angrily/furiously calmly/peacefully "
                  "easily/effortlessly proudly nervously/anxiously patiently skillfully/expertly secretly/covertly")
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


def synonym_groups() -> list[tuple[str, ...]]:
    """Every synonym group of the grammar (nouns, adjectives, adverbs, times, verbs), 2+ words each."""
    out = [g for groups in NOUNS.values() for g in groups] + [g for groups in ADJS.values() for g in groups]
    out += MANNERS + [g for _, g in TIMES]
    out += [tuple(v[0] for v in p.verbs) for p in PREDICATES]
    seen, uniq = set(), []
    for g in out:
        if len(g) > 1 and g not in seen:
            seen.add(g)
            uniq.append(g)
    return uniq


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


def srl_record(rng: random.Random) -> dict:
    f = make_frame(rng)
    text, slots, lemma = render(rng, f, agentless=rng.random() < 0.1)
    return {"text": text, "slots": slots, "predicate": lemma, "frame": f.pred.frame}


# -- paraphrase pairs ---------------------------------------------------------------------------

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


# -- generators ---------------------------------------------------------------------------------


class SrlGenerator(_Generator, Converter):
    """Slot-annotated sentences from the grammar (F1 lexical grounding): ``count`` rows (default 5000 / 1000 test)."""

    name = "srl_gen"
    formats = ("slot_annotated",)
    splits = ("train", "test")

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


class ParaphraseGenerator(_Generator, Converter):
    """Paraphrase pairs from the grammar (F1): ``count`` pairs (default 5000 / 1000 test), ~40% positive."""

    name = "paraphrase_gen"
    formats = ("paraphrase",)
    splits = ("train", "test")

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


# -- commonsense knowledge base -------------------------------------------------------------------
# Tables: one row per concept, "|" between columns, ";" between values, "-" for none.

_ANIMALS = """
dog | mammal; pet | bark; fetch stick; wag tail; guard house; swim | loyal; friendly | tail; fur; paw | house; park; kennel | bone; walk
cat | mammal; pet | meow; purr; climb tree; catch mouse | curious; independent | tail; fur; whisker; claw | house; sofa | fish; milk
horse | mammal; farm animal | neigh; gallop; pull cart; carry rider | strong; fast | mane; tail; hoof | farm; stable; field | hay; apple
cow | mammal; farm animal | moo; give milk; graze | large; gentle | udder; horn; hoof; tail | farm; barn; field | grass; hay
pig | mammal; farm animal | oink; roll in mud | pink; smart | snout; tail; hoof | farm; pen | mud; food
sheep | mammal; farm animal | bleat; graze | woolly; gentle | wool; hoof | farm; field; meadow | grass
goat | mammal; farm animal | bleat; climb rock; give milk | stubborn; curious | horn; beard; hoof | farm; mountain | grass
chicken | bird; farm animal | cluck; lay egg | small | feather; beak; wing | farm; coop | seed; grain
duck | bird; farm animal | quack; swim; fly | small | feather; beak; wing | pond; lake; farm | bread
owl | bird; wild animal | hoot; fly; hunt at night | wise; nocturnal | feather; beak; wing; talon | forest; tree; barn | mouse
eagle | bird; wild animal | fly; hunt; soar | strong; fast | feather; beak; wing; talon | mountain; sky; nest | fish; rabbit
parrot | bird; pet | talk; fly; mimic sound | colorful; clever | feather; beak; wing | cage; jungle | seed; fruit
sparrow | bird | chirp; fly | small; brown | feather; beak; wing | tree; nest; garden | seed
penguin | bird | swim; waddle | black; white | feather; beak; flipper | antarctica; ice; zoo | fish
crow | bird | caw; fly | black; clever | feather; beak; wing | tree; field | seed; corn
lion | mammal; wild animal | roar; hunt; run | strong; brave; fierce | mane; tail; claw; paw | savanna; zoo | meat
tiger | mammal; wild animal | roar; hunt; swim | striped; fierce | stripe; tail; claw | jungle; zoo | meat
bear | mammal; wild animal | growl; climb tree; catch fish; hibernate | strong; large | fur; claw; paw | forest; cave; mountain | honey; fish
wolf | mammal; wild animal | howl; hunt; run | wild; fierce | fur; tail; fang | forest; mountain | meat
fox | mammal; wild animal | hunt; dig | clever; sly | tail; fur | forest; den | chicken; rabbit
rabbit | mammal; pet | hop; dig; eat carrot | fast; soft | fur; tail; ear | field; burrow; garden | carrot; lettuce
mouse | mammal; rodent | squeak; run; nibble cheese | small; quick | tail; whisker; fur | house; field; hole | cheese
squirrel | mammal; rodent | climb tree; gather nut | quick; bushy | tail; fur | tree; park; forest | nut; acorn
hamster | mammal; rodent; pet | squeak; run in wheel | small; cute | fur; cheek | cage | seed
deer | mammal; wild animal | run; jump; graze | shy; fast | antler; hoof | forest; meadow | grass; leaf
elephant | mammal; wild animal | trumpet; spray water; remember | large; heavy; strong | trunk; tusk; ear | savanna; zoo; jungle | peanut; grass
monkey | mammal; primate; wild animal | climb tree; swing; chatter | playful; clever | tail; hand | jungle; tree; zoo | banana; fruit
giraffe | mammal; wild animal | eat leaf; run | tall | neck; spot | savanna; zoo | leaf
whale | mammal; sea animal | swim; sing; dive | large; huge | fin; tail; blowhole | ocean; sea | fish; krill
dolphin | mammal; sea animal | swim; jump; whistle | smart; playful | fin; tail | ocean; sea | fish
shark | fish; sea animal | swim; bite; hunt | dangerous; fierce | fin; tooth; gill | ocean; sea | fish; meat
salmon | fish | swim; swim upstream | tasty; pink | fin; scale; gill | river; ocean | insect
goldfish | fish; pet | swim | small; orange | fin; scale | bowl; pond; aquarium | fish food
snake | reptile | hiss; slither; bite | long; dangerous | scale; fang | grass; desert; jungle | mouse
turtle | reptile | swim; crawl; hide in shell | slow; old | shell; flipper | pond; sea; beach | lettuce
lizard | reptile | crawl; climb wall | small; fast | scale; tail | desert; rock | insect
crocodile | reptile | swim; bite | dangerous; fierce | tooth; tail; scale | river; swamp | meat
frog | amphibian | jump; croak; swim | green; slimy | leg; tongue | pond; lake | insect; fly
bee | insect | buzz; fly; sting; make honey | busy; small | wing; stinger | hive; garden; flower | nectar; pollen
ant | insect | crawl; carry food; dig | small; strong | leg; antenna | anthill; ground | sugar; food
butterfly | insect | fly | colorful; beautiful | wing; antenna | garden; flower; meadow | nectar
spider | arachnid | spin web; crawl; bite | small; scary | leg; fang | web; basement | fly; insect
mosquito | insect | bite; buzz; fly | annoying; small | wing | swamp; pond | blood
"""
# name | isa | property | location | used for | has a | made of
_FOODS = """
apple | fruit | red; sweet; crunchy | tree; orchard; market | eat; make pie | seed; skin; core | -
banana | fruit | yellow; sweet; soft | tree; market | eat; make smoothie | peel | -
orange | fruit | orange; juicy; sweet | tree; market | eat; make juice | peel; seed | -
grape | fruit | purple; small; sweet | vine; vineyard | eat; make wine | seed; skin | -
pear | fruit | green; sweet; juicy | tree; orchard | eat | seed; skin | -
cherry | fruit | red; small; sweet | tree | eat; make pie | pit; stem | -
lemon | fruit | yellow; sour | tree; market | make lemonade; flavor food | peel; seed | -
strawberry | fruit | red; sweet | field; garden | eat; make jam | seed | -
peach | fruit | soft; sweet; fuzzy | tree; orchard | eat; make pie | pit; skin | -
mango | fruit | sweet; juicy | tree; market | eat | pit; skin | -
carrot | vegetable | orange; crunchy | garden; field | eat; make soup | leaf | -
potato | vegetable | starchy; brown | field; ground | eat; make fries | skin | -
onion | vegetable | pungent; round | garden; kitchen | flavor food; cook | skin; layer | -
tomato | vegetable; fruit | red; juicy | garden; vine | make sauce; make salad | seed; skin | -
lettuce | vegetable | green; crisp | garden; field | make salad | leaf | -
cabbage | vegetable | green; round | garden; field | make soup | leaf | -
broccoli | vegetable | green; healthy | garden | eat | stem | -
pea | vegetable | green; small; round | pod; garden | eat | - | -
corn | vegetable; grain | yellow; sweet | field; farm | make popcorn; feed animal | kernel; cob | -
bread | baked food | soft; fresh | bakery; kitchen | make sandwich; eat | crust; crumb | flour; yeast
cake | dessert; baked food | sweet; soft | bakery; party | celebrate birthday; eat | frosting; layer | flour; sugar; egg
pie | dessert; baked food | sweet; warm | bakery; oven | eat | crust; filling | flour; fruit
cookie | dessert; baked food | sweet; crunchy | jar; bakery | eat; snack | - | flour; sugar; butter
pizza | baked food | hot; cheesy | restaurant; oven | eat; share | crust; slice | dough; cheese; tomato
sandwich | meal | tasty | lunchbox; kitchen; cafe | eat lunch | - | bread; cheese; meat
soup | meal | hot; liquid | bowl; kitchen; pot | eat; warm body | - | water; vegetable
rice | grain | white; small | bowl; field | eat; make sushi | - | -
pasta | food | soft | bowl; kitchen; restaurant | eat | - | flour; water; egg
cheese | dairy product | yellow; salty | refrigerator | make sandwich; make pizza | rind | milk
milk | dairy product; drink | white; cold | refrigerator; glass | drink; make cheese; make butter | - | -
butter | dairy product | yellow; soft | refrigerator | bake; spread on bread | - | milk; cream
egg | food | white; fragile | nest; refrigerator | make omelet; bake cake | shell; yolk | -
honey | food; sweetener | sweet; sticky; golden | hive; jar | sweeten tea | - | nectar
chocolate | dessert; candy | sweet; brown | box; store | eat; make cake | - | cocoa; sugar
candy | dessert | sweet; colorful | jar; store | eat; treat | - | sugar
steak | meat | juicy; hot | restaurant; grill | eat | - | beef
meat | food | red; raw | butcher; refrigerator | eat; cook | - | -
salad | meal | fresh; healthy | bowl; restaurant | eat | - | lettuce; tomato; cucumber
omelet | meal; breakfast | hot | plate; restaurant; kitchen | eat breakfast | - | egg
water | drink; liquid | wet; clear | river; lake; glass; bottle | drink; wash; cook | - | -
coffee | drink | hot; bitter | cup; cafe; mug | drink; wake up | - | coffee bean
tea | drink | hot | cup; teapot | drink | - | leaf
juice | drink | sweet; cold | glass; bottle; refrigerator | drink | - | fruit
wine | drink; alcohol | red | bottle; glass; cellar | drink | - | grape
beer | drink; alcohol | cold; bitter | bottle; bar | drink | - | barley; water
lemonade | drink | sweet; sour; cold | glass; pitcher | drink | - | lemon; sugar; water
soda | drink | sweet; fizzy | can; bottle | drink | - | sugar; water
flour | ingredient | white; powdery | bag; kitchen | bake bread; make dough | - | wheat
sugar | ingredient; sweetener | sweet; white | bowl; jar; kitchen | sweeten coffee; bake cake | - | sugarcane
salt | ingredient | salty; white | shaker; kitchen | season food | - | -
"""
# name | isa | used for | property | has a | location | made of
_OBJECTS = """
knife | utensil; tool | cut; cut bread; slice meat | sharp | blade; handle | kitchen; drawer | metal; steel
fork | utensil | eat; pick up food | pointy | tine; handle | kitchen; drawer; table | metal
spoon | utensil | eat soup; stir | round | handle | kitchen; drawer | metal; wood
pan | utensil; cookware | fry egg; cook | hot; flat | handle | kitchen; stove | metal; iron
pot | cookware | boil water; cook soup | deep; large | handle; lid | kitchen; stove | metal
plate | dishware | hold food; serve food | flat; round | - | kitchen; table; cupboard | ceramic; glass
bowl | dishware; container | hold soup | round | - | kitchen; table | ceramic; wood
cup | dishware; container | drink; hold coffee | small | handle | kitchen; cafe; table | ceramic; glass
bottle | container | hold water; store liquid | - | cap; neck | refrigerator; store | glass; plastic
jar | container | store food; hold honey | - | lid | kitchen; shelf; pantry | glass
box | container | store thing; hold thing | rectangular | lid | attic; garage; closet | cardboard; wood
bag | container | carry thing; hold groceries | - | handle; strap | store; car | cloth; paper; plastic
basket | container | carry fruit; hold bread | - | handle | kitchen; picnic | straw; wicker
bucket | container | carry water | - | handle | garden; farm; beach | plastic; metal
suitcase | container; luggage | pack clothes; travel | heavy | handle; wheel | airport; hotel; closet | leather; plastic
backpack | bag; container | carry book; carry thing | - | strap; pocket | school; closet | fabric
vase | container | hold flower | fragile | - | table; shelf | glass; ceramic
hammer | tool | pound nail; build; hit nail | heavy; hard | handle; head | toolbox; workshop; garage | metal; wood
saw | tool | cut wood | sharp | blade; handle; tooth | workshop; garage; toolbox | metal; steel
axe | tool | chop wood; cut tree | sharp; heavy | blade; handle | shed; forest; garage | metal; wood
screwdriver | tool | turn screw | - | handle; tip | toolbox; workshop | metal; plastic
wrench | tool | turn bolt | heavy | handle; jaw | toolbox; garage | metal
drill | tool | make hole | loud | bit; motor | workshop; garage; toolbox | metal
shovel | tool | dig; dig hole | - | blade; handle | shed; garden; garage | metal; wood
rake | tool | gather leaves | - | handle; prong | shed; garden | metal; wood
ladder | tool | climb; reach high place | tall | rung | garage; shed | wood; metal; aluminum
broom | cleaning tool | sweep; sweep floor | - | handle; bristle | closet; kitchen | straw; wood
brush | tool | paint; paint wall | soft | bristle; handle | studio; workshop | wood; plastic
needle | tool | sew; sew clothes | sharp; thin | eye; point | sewing box | metal; steel
scissors | tool | cut paper; cut hair | sharp | blade; handle | drawer; desk | metal
pen | writing tool | write; sign name; write letter | - | ink; cap; tip | desk; pocket; office | plastic; metal
pencil | writing tool | write; draw | - | eraser; graphite | desk; school; pocket | wood; graphite
crayon | writing tool | draw; color picture | colorful | - | box; school | wax
eraser | school supply | erase; remove mistake | soft | - | desk; pencil case | rubber
book | document | read; learn; study | - | page; cover | library; shelf; bookstore | paper
newspaper | document | read news; read | - | page; article | table; newsstand | paper
letter | document | communicate; send message | - | - | mailbox; envelope; desk | paper
map | document | navigate; find way | - | legend; scale | car; atlas | paper
chair | furniture | sit | - | leg; seat; back | kitchen; office; dining room | wood; metal; plastic
table | furniture | eat meal; hold dishes | flat | leg; top | kitchen; dining room | wood
desk | furniture | write; work; study | - | drawer; leg | office; classroom; bedroom | wood
bed | furniture | sleep; rest | soft | pillow; blanket; mattress | bedroom; hotel | wood; metal
sofa | furniture | sit; relax | soft; comfortable | cushion; arm | living room | fabric; leather
shelf | furniture | store book; display thing | - | - | wall; library; bedroom | wood
lamp | device; light source | light room; give light | bright | bulb; switch; shade | desk; table; bedroom | metal; glass
clock | device | tell time | - | hand; face | wall; kitchen | plastic; metal
phone | device | call friend; make call; send message | - | screen; battery; button | pocket; bag; desk | plastic; glass; metal
computer | device; machine | compute; work; play game; write | - | screen; keyboard; processor | office; desk; school | plastic; metal
television | device | watch show; entertain | - | screen; remote control | living room; bedroom | plastic; glass
radio | device | listen to music; hear news | - | antenna; speaker; dial | car; kitchen | plastic; metal
camera | device | take picture | - | lens; shutter; button | bag; studio | plastic; metal; glass
car | vehicle | drive; travel; transport people | fast | wheel; engine; door; seat; steering wheel | garage; road; street; parking lot | metal; steel
truck | vehicle | carry cargo; transport goods | large; heavy | wheel; engine; trailer | road; highway | metal; steel
bus | vehicle; public transport | transport passengers; travel | large | wheel; seat; door | road; bus stop; station | metal
bicycle | vehicle | ride; travel; exercise | - | wheel; pedal; chain; seat; handlebar | garage; street; park | metal
motorcycle | vehicle | ride; travel | fast; loud | wheel; engine; seat | garage; road | metal
train | vehicle; public transport | travel; transport passengers; carry cargo | long; fast | wheel; engine; carriage | station; track | metal
boat | vehicle; watercraft | sail; fish; cross river | - | hull; oar; motor | lake; river; harbor; sea | wood; metal
ship | vehicle; watercraft | sail; carry cargo; cross ocean | large | deck; hull; anchor | ocean; sea; harbor; port | metal; steel
airplane | vehicle; aircraft | fly; travel; transport passengers | fast; large | wing; engine; seat; cockpit | airport; sky | metal; aluminum
helicopter | vehicle; aircraft | fly; rescue people | loud | rotor | sky; airport; helipad | metal
tractor | vehicle; machine | plow field; pull plow | slow; heavy | wheel; engine | farm; field; barn | metal
taxi | vehicle | transport passengers | yellow | wheel; meter; seat | street; city; airport | metal
van | vehicle | deliver package; transport goods | - | wheel; door; engine | road; garage | metal
piano | musical instrument | play music; make music | heavy; loud | key; pedal; string | living room; concert hall; school | wood; metal
guitar | musical instrument | play music; play song | - | string; neck | stage; bedroom | wood
violin | musical instrument | play music | - | string; bow | orchestra; concert hall | wood
drum | musical instrument | make rhythm; play music | loud | drumhead | band; stage | wood; leather
flute | musical instrument | play music; play melody | - | hole; key | orchestra; band | metal; wood
trumpet | musical instrument | play music | loud; shiny | valve; mouthpiece | band; orchestra | brass
shirt | clothing | wear; cover body | - | sleeve; collar; button; pocket | closet; drawer; store | cotton; fabric
coat | clothing | keep warm; wear in winter | warm | sleeve; pocket; button; hood | closet; hook | wool; fabric
hat | clothing | cover head; block sun | - | brim | head; closet; hook | wool; straw
shoe | clothing; footwear | protect foot; walk | - | sole; lace; heel | foot; closet; store | leather; rubber
sock | clothing | keep foot warm | soft; warm | heel; toe | drawer; foot | cotton; wool
boot | clothing; footwear | walk in snow; protect foot | heavy; warm | sole; heel; lace | closet; foot | leather; rubber
glove | clothing | keep hand warm; protect hand | warm | finger | hand; drawer; pocket | wool; leather
scarf | clothing | keep neck warm | warm; soft | - | neck; closet | wool; silk
dress | clothing | wear to party | pretty | sleeve; hem | closet; store | silk; cotton
umbrella | object | keep dry; block rain | - | handle; canopy | closet; hallway | fabric; metal
key | object | open door; unlock door; start car | small | - | pocket; keychain; lock | metal
door | object | enter room; enter house | - | handle; hinge; lock; knob | house; wall; car | wood; metal
window | object | let in light; look outside | transparent; clear | pane; frame | wall; house; car | glass
ball | toy | play; throw; kick | round; bouncy | - | playground; park; toy box | rubber; leather
kite | toy | fly; play | colorful; light | string; tail | sky; park; beach | paper; plastic
doll | toy | play | small; pretty | hair; dress | toy box; bedroom | plastic; cloth
puzzle | toy; game | solve; play; pass time | difficult | piece | box; table | cardboard
balloon | toy; decoration | decorate party; float | light; colorful | string | party; sky | rubber
candle | object; light source | give light; decorate cake | hot; bright | wick | table; cake; church | wax
rope | object | tie; climb; tie knot | long; strong | knot | boat; garage; shed | fiber; nylon
mirror | object | see reflection | shiny; reflective | frame | bathroom; wall; bedroom | glass
pillow | bedding | sleep; rest head | soft | cover | bed; bedroom | feather; cotton
blanket | bedding | keep warm; cover bed | warm; soft | - | bed; bedroom; closet | wool; cotton
towel | object | dry body; dry hand | soft | - | bathroom; beach; kitchen | cotton; cloth
soap | toiletry | wash hands; clean; wash | slippery | - | bathroom; sink | fat; oil
toothbrush | toiletry | brush teeth; clean teeth | - | bristle; handle | bathroom; sink | plastic
coin | money | buy thing; pay | round; small | face | pocket; wallet; purse; bank | metal; copper; silver
money | object | buy thing; pay bill; buy food | valuable | - | bank; wallet; purse | paper; metal
wallet | accessory | hold money; hold card | - | pocket | pocket; purse; bag | leather
ring | jewelry | wear on finger; decorate hand | shiny; valuable; round | gem | finger; jewelry box | gold; silver
necklace | jewelry | wear on neck | shiny; pretty | chain; pendant | neck; jewelry box | gold; silver; pearl
"""
# name | isa | capable of | location | desires
_PEOPLE = """
chef | person; professional | cook; cook food; make meal; bake bread | kitchen; restaurant | praise
doctor | person; professional | heal patient; treat illness; examine patient; prescribe medicine | hospital; clinic; office | heal people
nurse | person; professional | care for patient; help doctor; give injection | hospital; clinic | help people
teacher | person; professional | teach; teach student; grade test | school; classroom | educate child
student | person | learn; study; read book; take test | school; classroom; library | learn; pass exam
farmer | person; worker | grow crop; plant seed; milk cow; drive tractor | farm; field; barn | rain; good harvest
baker | person; worker | bake; bake bread; bake cake | bakery; kitchen | flour
mechanic | person; worker | fix car; repair engine | garage; workshop | tool
carpenter | person; worker | build; build furniture; cut wood | workshop | wood
pilot | person; professional | fly; fly airplane; land plane | airport; cockpit; airplane | fly
driver | person | drive; drive car; drive bus | car; bus; road | arrive
police officer | person; professional | arrest thief; direct traffic; protect people | police station; street | catch thief
firefighter | person; professional | fight fire; put out fire; rescue people | fire station | put out fire
artist | person | paint; draw; paint picture | studio; museum | inspiration
writer | person | write; write book; write story | office; desk; library | publish book
singer | person | sing; sing song | stage; concert | applause
musician | person | play music; play instrument | stage; concert hall | applause
scientist | person; professional | do research; conduct experiment | laboratory | make discovery
lawyer | person; professional | argue case; defend client | court; office | win case
soldier | person | fight; protect country; march | base; battlefield | peace
sailor | person | sail; sail ship; tie knot | ship; boat; sea | wind
gardener | person; worker | plant flower; water plant; rake leaves | garden; park | rain
thief | person; criminal | steal; steal money; run away | street; jail | money
child | person | play; laugh; learn | school; playground; house | toy; candy
baby | person | cry; sleep; crawl | crib; nursery | milk; sleep
mother | parent; person | love child; care for child | house | happy child
waiter | person; worker | serve food; take order | restaurant; cafe | tip
mailman | person; worker | deliver mail; deliver letter | street; post office | -
king | person; ruler | rule; rule kingdom | castle; palace | power
queen | person; ruler | rule; rule kingdom | castle; palace | power
customer | person | buy; buy thing; pay | store; shop; market | bargain
athlete | person | run; exercise; compete; win race | stadium; gym | win
person | human | think; talk; walk; read; love | house; city | happiness; love; food
"""
# name | isa | used for | has a | at location (also PartOf for rooms)
_PLACES = """
kitchen | room | cook; cook food; prepare food | stove; oven; refrigerator; sink; table | house; restaurant
bedroom | room | sleep; rest | bed; closet | house; hotel
bathroom | room | take bath; wash hands; shower | sink; toilet; bathtub; mirror | house
living room | room | relax; watch television | sofa; television; lamp | house
garage | room | park car; store tool | car; door | house
basement | room | store thing | - | house
attic | room | store thing; store box | - | house
classroom | room | learn; teach; study | desk; blackboard; chair | school
office | room; workplace | work; write report | desk; computer; chair | building; city
house | building; home | live; sleep | kitchen; bedroom; door; window; roof | city; town; street
school | building | learn; study; teach | classroom; teacher; student; library | city; town
hospital | building | heal sick people; treat patient | doctor; nurse; bed | city
library | building | read; borrow book; study | book; shelf; desk | city; school
restaurant | building; business | eat; eat dinner | table; chair; kitchen; menu; chef | city; street
bakery | store | buy bread | oven; bread; cake | town; street
store | building; business | buy; buy thing; shop | shelf; counter | mall; street; town
market | place | buy food; sell food; shop | stall; vendor; fruit | town; city
museum | building | see art; learn history | painting; statue; exhibit | city
zoo | place | see animal | animal; cage; elephant | city
farm | place | grow food; raise animals; grow crop | barn; field; tractor; animal | countryside
park | place | play; walk; relax; picnic | tree; bench; grass; playground | city; town
playground | place | play | slide; swing; sandbox | park; school
beach | place | swim; sunbathe; relax; build sandcastle | sand; water; shell | coast
forest | place | hike; camp | tree; wildlife; path | mountain; countryside
mountain | landform | climb; hike; ski | peak; snow | countryside
lake | body of water | swim; fish | water; fish; boat | forest; valley; park
river | body of water | swim; fish; travel | water; fish; bank | valley; forest
ocean | body of water | swim; sail | water; fish; wave; whale | earth
sea | body of water | swim; sail | water; fish; wave | earth
desert | place | ride camel | sand; cactus; camel | earth
airport | building | fly; travel; board plane | airplane; runway; pilot | city
station | building | catch train; travel | train; platform; ticket | city; town
stadium | building | play sport; watch game | seat; field; crowd | city
gym | building | exercise; work out; lift weights | treadmill; weight | city; school
church | building | pray; worship; get married | bell; altar | town; village
castle | building | live; defend kingdom | tower; wall; king | hill
barn | building | store hay; house animals | hay; cow; horse | farm
garden | place | grow flower; grow vegetable; relax | flower; plant; vegetable; soil | house; yard
city | place | live; work | street; building; park | country
village | place | live | house; church; farm | countryside
street | road | drive; walk | car; sidewalk | city; town
road | path | drive; travel | car; lane | city; countryside
bank | building; business | save money; store money | money; vault; teller | city; street
hotel | building | sleep; stay overnight | room; bed; lobby | city
theater | building | watch play; see movie | stage; seat; curtain | city
post office | building | mail letter; send package; buy stamp | mailbox; letter; stamp | town
"""
# name | used for | part of | has a
_BODY = """
eye | see; look; read | face; head | eyelid; eyelash; pupil
ear | hear; listen | head | -
nose | smell; breathe | face | nostril
mouth | eat; speak; talk | face | tooth; tongue; lip
tooth | chew; bite | mouth | -
tongue | taste; talk | mouth | -
hand | hold; grab; write; wave | arm; body | finger; palm; thumb
finger | point; touch | hand | nail
foot | walk; run; kick | leg; body | toe; heel
leg | walk; run; stand | body | knee; foot
arm | lift; hug; carry | body | hand; elbow
head | think | body | face; hair; brain
brain | think; remember; learn | head | -
heart | pump blood | body; chest | -
face | smile; express emotion | head | eye; nose; mouth
lung | breathe | body; chest | -
stomach | digest food | body | -
"""
CATEGORY_PARENTS = """
mammal animal; bird animal; fish animal; reptile animal; amphibian animal; insect animal; arachnid animal;
rodent mammal; primate mammal; pet animal; farm animal animal; wild animal animal; sea animal animal;
fruit food; vegetable food; dessert food; baked food food; dairy product food; meat food; grain food; meal food;
breakfast meal; candy food; sweetener food; ingredient food; drink liquid; alcohol drink; utensil tool;
cookware utensil; dishware object; container object; tool object; writing tool tool; cleaning tool tool;
furniture object; device machine; machine object; vehicle machine; watercraft vehicle; aircraft vehicle;
public transport vehicle; musical instrument object; clothing object; footwear clothing; jewelry accessory;
accessory object; toy object; document object; bedding object; toiletry object; light source object; luggage container;
room place; building structure; store building; business organization; body of water place; landform place;
professional person; worker person; ruler person; criminal person; parent person; person human; human mammal;
school supply object; money object; decoration object; game activity; road path; workplace place; home place
"""
ANTONYMS = ("big small; hot cold; fast slow; happy sad; old new; old young; hard soft; heavy light; wet dry; tall short; "
            "long short; open close; buy sell; win lose; day night; sweet sour; loud quiet; clean dirty; strong weak; "
            "full empty; rich poor; begin end; good bad; early late; dark bright; push pull; give take; laugh cry")
# base -> synonyms (a synonym without its own row gets the base's triples as well)
SYNONYMS = ("dog canine hound; cat feline; car automobile; chef cook; child kid; doctor physician; big large; "
            "small little; fast quick; buy purchase; chase pursue; begin start; sofa couch; rabbit bunny; pig hog; "
            "bicycle bike; airplane plane aircraft; taxi cab; motorcycle motorbike; truck lorry; teacher instructor; "
            "student pupil; thief robber burglar; lawyer attorney; store shop; cup mug; bag sack; coat jacket; "
            "street road; garden yard; hospital clinic; happy glad; smart clever; fix repair; close shut; baby infant; "
            "waiter server; mailman postman; sea ocean; cookie biscuit; shovel spade; axe hatchet; wrench spanner; "
            "phone telephone; television tv; stone rock; quickly rapidly; angry mad; sad unhappy; hammer mallet")
RELATIONS = ("IsA", "UsedFor", "CapableOf", "AtLocation", "HasProperty", "PartOf", "HasA", "Desires", "MadeOf",
             "Synonym", "Antonym")


def _table(text: str, ncols: int) -> list[list[list[str]]]:
    rows = []
    for line in text.strip().splitlines():
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

    for (name,), isa, capable, prop, hasa, loc, desires in _table(_ANIMALS, 7):
        add(name, "IsA", isa), add(name, "CapableOf", capable), add(name, "HasProperty", prop)
        parts(name, hasa), add(name, "AtLocation", loc), add(name, "Desires", desires)
    for (name,), isa, prop, loc, used, hasa, made in _table(_FOODS, 7):
        add(name, "IsA", isa), add(name, "HasProperty", prop), add(name, "AtLocation", loc)
        add(name, "UsedFor", used), parts(name, hasa), add(name, "MadeOf", made)
    for (name,), isa, used, prop, hasa, loc, made in _table(_OBJECTS, 7):
        add(name, "IsA", isa), add(name, "UsedFor", used), add(name, "HasProperty", prop)
        parts(name, hasa), add(name, "AtLocation", loc), add(name, "MadeOf", made)
    for (name,), isa, capable, loc, desires in _table(_PEOPLE, 5):
        add(name, "IsA", isa), add(name, "CapableOf", capable), add(name, "AtLocation", loc), add(name, "Desires", desires)
    for (name,), isa, used, hasa, loc in _table(_PLACES, 5):
        add(name, "IsA", isa), add(name, "UsedFor", used), parts(name, hasa)
        add(name, "PartOf" if isa == ["room"] else "AtLocation", loc)
    for (name,), used, partof, hasa in _table(_BODY, 4):
        add(name, "IsA", ["body part"]), add(name, "UsedFor", used), add(name, "PartOf", partof), parts(name, hasa)
    add("body part", "PartOf", ["body"])
    for pair in CATEGORY_PARENTS.replace("\n", " ").split(";"):
        if pair.strip():
            *child, parent = pair.split()
            out.append((" ".join(child), "IsA", parent))
    for pair in ANTONYMS.split(";"):
        a, b = pair.split()
        out += [(a, "Antonym", b), (b, "Antonym", a)]
    heads = {h for h, _, _ in out}
    for group in SYNONYMS.split(";"):
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
