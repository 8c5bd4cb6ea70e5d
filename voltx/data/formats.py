"""Volt record formats: one frozen dataclass per format, defined once, validated once.

Every converter produces records in one of these formats; ``voltx data stream`` writes them
as JSONL (one ``to_dict()`` object per line). ``docs/data-contracts.md`` has the same table.

============== ================== ==========================================================
format         class              JSONL fields
============== ================== ==========================================================
slot_annotated ``SlotAnnotated``  ``text: str``, ``slots: {"S0": str, ...}`` (keys S0..S15,
                                  non-empty strings), optional ``frame``, ``predicate``,
                                  ``source`` (str)
paraphrase     ``Paraphrase``     ``a: str``, ``b: str`` and ``score: float`` (0-5) and/or
                                  ``label: int`` (1 paraphrase / 0 not), optional ``source``
triples        ``Triple``         ``head``, ``relation``, ``tail`` (str), optional
                                  ``weight: float``, ``source``
reasoning      ``Reasoning``      ``input: str``, ``output: str``, ``steps: list[str]`` (may be
                                  empty), ``task: str``, optional ``meta: dict``, ``source``
code_pairs     ``CodePairRecord`` ``code``, ``docstring``, ``language``, ``name`` (str),
                                  optional ``source``
code_problems  ``CodeProblem``    ``id``, ``query``, ``solution`` (str), ``tests: list[str]``,
                                  optional ``entry_point``, ``language`` (str),
                                  ``difficulty`` (str or int), ``source``
============== ================== ==========================================================

Rules shared by all formats: unknown fields are errors (put extras in ``meta`` where a format
has one, or in ``source``); optional fields that are ``None`` are left out of the JSON;
``bool`` is never accepted where a number is expected. Validation raises :class:`RecordError`
naming the field and what was expected.

The list is open: a plugin adds a format with ``register_record_formats`` (a
:class:`voltx.plugin_specs.RecordFormatSpec` naming a :class:`Record` dataclass whose
``REQUIRED`` / ``OPTIONAL`` map fields to :data:`TYPE_TAGS`); every function here that takes a
format name then knows it, with the same rules and messages (``docs/plugins.md``).

``validate_dict(fmt, obj)`` checks a plain dict (the fast path the streaming core uses);
``record_to_dict(fmt, record)`` accepts either a dataclass of the format or a dict.
``PROPBANK_TO_SLOT`` / ``FRAMENET_TO_SLOT`` map semantic roles to the 16 slots.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from voltx.errors import DataError

__all__ = [
    "RecordError", "SlotAnnotated", "Paraphrase", "Triple", "Reasoning", "CodePairRecord", "CodeProblem",
    "FORMATS", "SLOT_KEYS", "PROPBANK_TO_SLOT", "FRAMENET_TO_SLOT", "propbank_slot", "validate_dict",
    "record_to_dict", "from_dict", "check_columns", "Record", "TYPE_TAGS", "format_classes",
]


class RecordError(DataError):
    """A record that does not match its format: ``field`` names the offending field."""

    def __init__(self, reason: str, field: str | None = None):
        self.reason = reason
        self.field = field
        super().__init__(f"field {field!r}: {reason}" if field else reason)


SLOT_KEYS = tuple(f"S{i}" for i in range(16))
_SLOT_SET = frozenset(SLOT_KEYS)

# type tags: "str", "str!" (non-empty str), "num" (int|float, not bool), "int", "list[str]", "dict", "str|int"
_T_STR, _T_NESTR, _T_NUM, _T_INT, _T_LSTR, _T_DICT, _T_STRINT = "str", "str!", "num", "int", "list[str]", "dict", "str|int"
TYPE_TAGS = (_T_STR, _T_NESTR, _T_NUM, _T_INT, _T_LSTR, _T_DICT, _T_STRINT)
"""The field types a record class may declare: ``str``, ``str!`` (non-empty), ``num`` (int or
float, finite, not bool), ``int``, ``list[str]``, ``dict``, ``str|int``."""


def _check_type(name: str, value: Any, tag: str) -> None:
    if tag == _T_STR or tag == _T_NESTR:
        if not isinstance(value, str):
            raise RecordError(f"expected a string, got {type(value).__name__}", name)
        if tag == _T_NESTR and not value.strip():
            raise RecordError("expected a non-empty string", name)
    elif tag == _T_NUM:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecordError(f"expected a number, got {type(value).__name__}", name)
        if value != value or value in (float("inf"), float("-inf")):
            raise RecordError("expected a finite number", name)
    elif tag == _T_INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecordError(f"expected an integer, got {type(value).__name__}", name)
    elif tag == _T_LSTR:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RecordError("expected a list of strings", name)
    elif tag == _T_DICT:
        if not isinstance(value, dict):
            raise RecordError(f"expected an object (dict), got {type(value).__name__}", name)
    elif tag == _T_STRINT:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise RecordError(f"expected a string or integer, got {type(value).__name__}", name)


class Record:
    """Shared behaviour; subclasses set FORMAT and REQUIRED / OPTIONAL (field -> type tag of
    :data:`TYPE_TAGS`) and may add ``_extra_checks(obj)`` (raise :class:`RecordError`)."""

    FORMAT: ClassVar[str] = ""
    REQUIRED: ClassVar[dict[str, str]] = {}
    OPTIONAL: ClassVar[dict[str, str]] = {}

    @classmethod
    def check(cls, obj: dict) -> None:
        """Validate a plain dict in this format (raise RecordError)."""
        if not isinstance(obj, dict):
            raise RecordError(f"a {cls.FORMAT} record must be a JSON object, got {type(obj).__name__}")
        for name, tag in cls.REQUIRED.items():  # fast path for strings: the common case
            value = obj.get(name)
            if value is None:
                raise RecordError(f"missing (required for {cls.FORMAT})", name)
            if type(value) is str and (tag == _T_STR or (tag == _T_NESTR and value and not value.isspace())):
                continue
            _check_type(name, value, tag)
        if len(obj) != len(cls.REQUIRED):
            optional = cls.OPTIONAL
            for name, value in obj.items():
                if name in cls.REQUIRED:
                    continue
                tag = optional.get(name)
                if tag is None:
                    allowed = ", ".join([*cls.REQUIRED, *optional])
                    raise RecordError(f"unknown field in a {cls.FORMAT} record (fields: {allowed})", name)
                if value is not None:
                    _check_type(name, value, tag)
        cls._extra_checks(obj)

    @classmethod
    def _extra_checks(cls, obj: dict) -> None:
        pass

    def to_dict(self) -> dict:
        """The JSONL object: optional fields that are None are left out."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name not in self.REQUIRED:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    def validate(self) -> None:
        """Raise RecordError (field, what was expected) unless this record is well-formed."""
        self.check(self.to_dict())

    @classmethod
    def from_dict(cls, obj: dict):
        """Build and validate a record from its JSONL object."""
        cls.check(obj)
        return cls(**obj)  # type: ignore[call-arg]


@dataclass(frozen=True)
class SlotAnnotated(Record):
    text: str
    slots: dict[str, str]
    frame: str | None = None
    predicate: str | None = None
    source: str | None = None

    FORMAT: ClassVar[str] = "slot_annotated"
    REQUIRED: ClassVar[dict[str, str]] = {"text": _T_NESTR, "slots": _T_DICT}
    OPTIONAL: ClassVar[dict[str, str]] = {"frame": _T_STR, "predicate": _T_STR, "source": _T_STR}

    @classmethod
    def _extra_checks(cls, obj: dict) -> None:
        for key, value in obj["slots"].items():
            if key not in _SLOT_SET:
                raise RecordError(f"slot key {key!r} is not one of S0..S15", "slots")
            if not isinstance(value, str) or not value.strip():
                raise RecordError(f"slot {key} must be a non-empty string, got {value!r}", "slots")


@dataclass(frozen=True)
class Paraphrase(Record):
    a: str
    b: str
    score: float | None = None
    label: int | None = None
    source: str | None = None

    FORMAT: ClassVar[str] = "paraphrase"
    REQUIRED: ClassVar[dict[str, str]] = {"a": _T_NESTR, "b": _T_NESTR}
    OPTIONAL: ClassVar[dict[str, str]] = {"score": _T_NUM, "label": _T_INT, "source": _T_STR}

    @classmethod
    def _extra_checks(cls, obj: dict) -> None:
        score, label = obj.get("score"), obj.get("label")
        if score is None and label is None:
            raise RecordError("a paraphrase record needs 'score' (0-5) and/or 'label' (0/1)", "score")
        if score is not None and not 0.0 <= score <= 5.0:
            raise RecordError(f"expected a similarity between 0 and 5, got {score}", "score")
        if label is not None and label not in (0, 1):
            raise RecordError(f"expected 1 (paraphrase) or 0 (not), got {label}", "label")


@dataclass(frozen=True)
class Triple(Record):
    head: str
    relation: str
    tail: str
    weight: float | None = None
    source: str | None = None

    FORMAT: ClassVar[str] = "triples"
    REQUIRED: ClassVar[dict[str, str]] = {"head": _T_NESTR, "relation": _T_NESTR, "tail": _T_NESTR}
    OPTIONAL: ClassVar[dict[str, str]] = {"weight": _T_NUM, "source": _T_STR}


@dataclass(frozen=True)
class Reasoning(Record):
    input: str
    output: str
    steps: list[str] = field(default_factory=list)
    task: str = ""
    meta: dict | None = None
    source: str | None = None

    FORMAT: ClassVar[str] = "reasoning"
    REQUIRED: ClassVar[dict[str, str]] = {"input": _T_NESTR, "output": _T_STR, "steps": _T_LSTR, "task": _T_NESTR}
    OPTIONAL: ClassVar[dict[str, str]] = {"meta": _T_DICT, "source": _T_STR}


@dataclass(frozen=True)
class CodePairRecord(Record):
    code: str
    docstring: str
    language: str
    name: str
    source: str | None = None

    FORMAT: ClassVar[str] = "code_pairs"
    REQUIRED: ClassVar[dict[str, str]] = {"code": _T_NESTR, "docstring": _T_STR, "language": _T_NESTR, "name": _T_STR}
    OPTIONAL: ClassVar[dict[str, str]] = {"source": _T_STR}


@dataclass(frozen=True)
class CodeProblem(Record):
    id: str
    query: str
    solution: str
    tests: list[str] = field(default_factory=list)
    entry_point: str | None = None
    language: str | None = None
    difficulty: str | int | None = None
    source: str | None = None

    FORMAT: ClassVar[str] = "code_problems"
    REQUIRED: ClassVar[dict[str, str]] = {"id": _T_NESTR, "query": _T_NESTR, "solution": _T_STR, "tests": _T_LSTR}
    OPTIONAL: ClassVar[dict[str, str]] = {"entry_point": _T_STR, "language": _T_STR, "difficulty": _T_STRINT, "source": _T_STR}


FORMATS: dict[str, type] = {
    cls.FORMAT: cls for cls in (SlotAnnotated, Paraphrase, Triple, Reasoning, CodePairRecord, CodeProblem)
}


def format_classes() -> dict[str, type]:
    """Every record format by name: the built-ins, then those the installed plugins register."""
    from voltx.plugins import load_plugins  # the loader imports plugin specs, which import this module

    return {**FORMATS, **{name: spec.record for name, spec in load_plugins().specs("record_formats").items()}}


def _format_class(fmt: str) -> type:
    cls = FORMATS.get(fmt)
    if cls is not None:
        return cls
    known = format_classes()
    if fmt in known:
        return known[fmt]
    from voltx.errors import UsageError, closest

    hint = closest(fmt, known)
    raise UsageError(
        f"unknown record format {fmt!r}" + (f" (did you mean {hint!r}?)" if hint else "") + f". Formats: {', '.join(known)}."
    )


def validate_dict(fmt: str, obj: Any) -> None:
    """Raise RecordError unless ``obj`` is a valid JSONL object of format ``fmt``."""
    _format_class(fmt).check(obj)


def from_dict(fmt: str, obj: dict):
    """The dataclass record of format ``fmt`` for a JSONL object (validated)."""
    return _format_class(fmt).from_dict(obj)


def record_to_dict(fmt: str, record: Any) -> dict:
    """A converter's output (dataclass of the format, or dict) as a validated JSONL object."""
    cls = _format_class(fmt)
    if isinstance(record, dict):
        cls.check(record)
        return record
    if isinstance(record, cls):
        out = record.to_dict()
        cls.check(out)
        return out
    got = getattr(record, "FORMAT", None) or type(record).__name__
    raise RecordError(f"converter produced a {got} record where {fmt} ({cls.__name__}) was asked for")


# --- columnar validation (the streaming core's batch fast path) -------------------------------

_NUM_TYPES = frozenset((int, float))
_STRINT_TYPES = frozenset((str, int))


def _column_ok(col: list, tag: str, optional: bool) -> bool:
    """True if every value of ``col`` is valid for ``tag`` (``None`` allowed when optional).

    Stricter than :func:`_check_type` (exact types, no subclasses): a batch with anything unusual
    is sent down the per-row path, which accepts or reports it exactly as before.
    """
    types = set(map(type, col))
    if optional and type(None) in types:
        types.discard(type(None))
        if not types:
            return True
        col = [v for v in col if v is not None]
    elif not types:
        return True
    if tag == _T_STR:
        return types == {str}
    if tag == _T_NESTR:
        return types == {str} and all(col) and not any(map(str.isspace, col))
    if tag == _T_NUM:
        if not types <= _NUM_TYPES:
            return False
        if float in types:
            try:
                return all(map(math.isfinite, col))
            except OverflowError:
                return False
        return True
    if tag == _T_INT:
        return types == {int}
    if tag == _T_LSTR:
        return types == {list} and all(type(x) is str for v in col for x in v)
    if tag == _T_DICT:
        return types == {dict}
    if tag == _T_STRINT:
        return types <= _STRINT_TYPES
    return False


def check_columns(fmt: str, columns: dict[str, list], n: int) -> bool:
    """True if all ``n`` records given as columns (a ``None`` in an optional column = key left out)
    are valid records of ``fmt``; False if any is not (or anything is unusual): the caller then
    checks that batch row by row, which names the row and field. Never raises for bad data.
    """
    cls = _format_class(fmt)
    required, optional = cls.REQUIRED, cls.OPTIONAL
    for name in required:
        if name not in columns:
            return False
    for name, col in columns.items():
        if type(col) is not list or len(col) != n:
            return False
        tag = required.get(name)
        if tag is not None:
            if not _column_ok(col, tag, False):
                return False
            continue
        tag = optional.get(name)
        if tag is None or not _column_ok(col, tag, True):
            return False
    if cls is Paraphrase:
        score, label = columns.get("score"), columns.get("label")
        if label is None:  # the common case: scores only, checked at C speed
            return score is not None and (not n or (None not in score and min(score) >= 0.0 and max(score) <= 5.0))
        score = score if score is not None else [None] * n
        return all((s is not None or lab is not None) and (s is None or 0.0 <= s <= 5.0) and (lab is None or lab in (0, 1))
                   for s, lab in zip(score, label))
    if cls is SlotAnnotated:
        try:
            for slots in columns["slots"]:
                cls._extra_checks({"slots": slots})
        except RecordError:
            return False
        return True
    if cls._extra_checks.__func__ is not Record._extra_checks.__func__:  # a check without a columnar twin
        keys = list(columns)
        try:
            for values in zip(*columns.values()):
                cls._extra_checks({k: v for k, v in zip(keys, values) if v is not None})
        except (RecordError, KeyError, TypeError, ValueError):
            return False
    return True


# --- semantic roles -> slots (the training plan's table) -------------------------------------

PROPBANK_TO_SLOT: dict[str, str] = {
    "ARG0": "S0", "V": "S1", "ARG1": "S2", "ARGM-LOC": "S3", "ARGM-TMP": "S4", "ARGM-MNR": "S5",
    "ARG2": "S6", "ARGM-CAU": "S7", "ARG3": "S8", "ARG4": "S8", "ARGM-DIR": "S9", "ARGM-ADV": "S10",
    "ARGM-PNC": "S11", "ARGM-PRP": "S11", "ARGM-DIS": "S12", "ARGM-NEG": "S13", "ARGM-MOD": "S14",
}
"""PropBank role -> slot; any other ``ARGM-*`` goes to S15 (see :func:`propbank_slot`)."""

def _fn(slot: str, *names: str) -> dict[str, str]:
    return {n: slot for n in names}


FRAMENET_TO_SLOT: dict[str, str] = {
    # The training plan's generic elements ...
    "Agent": "S0", "predicate": "S1", "Patient": "S2", "Location": "S3", "Time": "S4", "Manner": "S5",
    "Instrument": "S6", "Cause": "S7", "Result": "S8",
    # ... and FrameNet's frame-specific names for the same thematic roles. Most frame elements
    # are frame-specific (Cook, Buyer, Theme), so without these nearly every FE fell into S15.
    **_fn("S0", "Speaker", "Communicator", "Cognizer", "Perceiver", "Perceiver_agentive", "Perpetrator", "Buyer",
          "Seller", "Donor", "Self_mover", "Cook", "Creator", "Author", "Performer", "Actor", "Protagonist",
          "Killer", "Attacker", "Helper", "Employer", "Leader", "Driver", "Producer", "Teacher", "Judge",
          "Interlocutor_1", "Partner_1", "Sides", "Arguer", "Offender", "Thief", "Assailant", "Punisher"),
    **_fn("S2", "Theme", "Item", "Entity", "Goods", "Message", "Topic", "Content", "Food", "Victim",
          "Phenomenon", "Stimulus", "Created_entity", "Text", "Addressee", "Recipient", "Experiencer",
          "Patient", "Undergoer", "Affected", "Evaluee", "Possession", "Product", "Resource", "Theme_1",
          "Student", "Employee", "Goal_entity", "Dependent_entity", "Whole", "Part", "Figure"),
    **_fn("S3", "Place", "Area", "Goal", "Source", "Path", "Ground", "Setting", "Location_of_event",
          "Destination", "Position", "Container", "Locale"),
    **_fn("S4", "Duration", "Frequency", "Iterations", "Time_of_event", "Period_of_iterations", "Timespan"),
    **_fn("S5", "Degree", "Speed", "Descriptor", "Depictive", "Medium", "Mode"),
    **_fn("S6", "Means", "Vehicle", "Tool", "Method", "Instrument_1"),
    **_fn("S7", "Reason", "Explanation", "Internal_cause", "External_cause", "Trigger", "Circumstances"),
    **_fn("S8", "Purpose", "Outcome", "Effect", "Consequence", "Final_state", "Resulting_action", "Goal_conditions"),
    **_fn("S9", "Direction"),
    **_fn("S13", "Negation"),
}
"""FrameNet frame element -> slot: the plan's generic elements plus FrameNet's frame-specific
names for the same roles (doers -> Agent, undergoers/themes -> Patient, places and goals ->
Location, ...); anything else goes to S15."""


def propbank_slot(role: str) -> str | None:
    """The slot of a PropBank role label (``C-``/``R-`` prefixes stripped); None for non-roles."""
    role = role.upper()
    for prefix in ("C-", "R-"):
        if role.startswith(prefix):
            role = role[len(prefix):]
    if role in PROPBANK_TO_SLOT:
        return PROPBANK_TO_SLOT[role]
    if role.startswith("ARGM-"):
        return "S15"
    return None
