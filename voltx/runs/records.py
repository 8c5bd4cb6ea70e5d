"""The record types of a run's JSONL files: one declared dataclass per kind, one parser.

run.json (the manifest) is one :class:`Manifest`. metrics.jsonl holds :class:`StepRecord` lines (``RunWriter.log_metrics``); events.jsonl holds
:class:`Event` lines, and the kinds readers act on have their own type (:class:`Evaluation`,
:class:`Deliverable`, :class:`Alert`, :class:`Checkpoint`, :class:`Resumed`, :class:`End`, and the
curriculum's :class:`CurriculumStart` / :class:`CurriculumPhase`).
Every reader of a run store (status, report, export, the console) turns lines into records
through :func:`parse_step` / :func:`parse_event` (and run.json through
:func:`voltx.runs.layout.load_manifest`), so a line whose declared fields have the wrong
type (``"passed": "maybe"``, ``"step": "abc"``) is skipped with a reason by all of them alike,
never shown as something it is not.

Rules, in one place:

- a field's type is its annotation: ``int`` (an integral float such as ``3.0`` is read as 3),
  ``float`` (any JSON number), ``str``, ``bool`` (only ``true``/``false``), ``dict[str, float | None]``,
  ``list[str]``, ``list[dict]`` (a list of objects, their contents not checked);
  ``| None`` allows null; a field without a default is required;
- NaN and +-Infinity are read as null: the writer writes non-finite numbers as null
  (:func:`voltx.runs.jsonl.dumps`), so another writer's NaN means the same "no value"; where a
  field needs a value (a step) a NaN is an error like any other wrong type;
- records are open: fields a type does not declare are kept, as written, in ``extra``
  (a plugin's own keys, measured metrics such as ``rar/iterations_mean``).

Import-light (no torch, no rich): ``voltx status/report/export`` read runs through this.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from voltx.runs.jsonl import RecordError, describe, null_non_finite
from voltx.plugin_specs import COMPARISONS

R = TypeVar("R", bound="Record")
_Check = Callable[[Any, str], Any]
_PLAIN = frozenset({int, str, bool, type(None)})


def _wrong(name: str, expected: str, value: Any) -> RecordError:
    return RecordError(f"field {name!r} expected {expected}, got {describe(value)}")


# --- one checker per annotated type: returns the value as the record holds it, or raises -------------


def _integer(value: Any, name: str) -> int:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():  # another writer's 3.0
        return int(value)
    raise _wrong(name, "an integer", value)


def _number(value: Any, name: str) -> float | None:
    if type(value) is float:
        return value if math.isfinite(value) else None
    if type(value) is int:
        return value
    raise _wrong(name, "a number", value)


def _text(value: Any, name: str) -> str:
    if type(value) is str:
        return value
    raise _wrong(name, "a string", value)


def _flag(value: Any, name: str) -> bool:
    if type(value) is bool:
        return value
    raise _wrong(name, "true or false", value)


def _finite(value: Any) -> bool:
    """An int, or a float that is not NaN/inf (``x - x`` is 0 only for finite x): no call, no import."""
    return type(value) is int or (type(value) is float and value - value == 0.0)


def _numbers(value: Any, name: str) -> dict[str, float | None]:
    """An object of named numbers (losses, evaluated metrics); null and NaN are 'no value'."""
    if type(value) is not dict:
        raise _wrong(name, "an object of numbers", value)
    for item in value.values():  # inlined _finite: every logged step's losses pass here, writer and readers
        if type(item) is float:
            if item - item != 0.0:
                break
        elif type(item) is not int and item is not None:
            break
    else:
        return value
    return {key: None if item is None else _number(item, f"{name}.{key}") for key, item in value.items()}


def _texts(value: Any, name: str) -> list[str]:
    if type(value) is list and all(type(item) is str for item in value):
        return value
    raise _wrong(name, "a list of strings", value)


def _objects(value: Any, name: str) -> list[dict]:
    if type(value) is list and all(type(item) is dict for item in value):
        return value
    raise _wrong(name, "a list of objects", value)


_NUMBERS = dict[str, float | None]
_CHECKS: dict[Any, _Check] = {int: _integer, float: _number, str: _text, bool: _flag, _NUMBERS: _numbers,
                              list[str]: _texts, list[dict]: _objects}
_AS_IS: dict[Any, tuple[type, ...]] = {int: (int,), float: (int, float), str: (str,), bool: (bool,), _NUMBERS: (),
                                       list[str]: (), list[dict]: ()}
"""Exact types a field holds unchanged (a float only when finite), tested without a call: a
million-line metrics.jsonl is read through this. Other values go to the field's checker,
which converts them (NaN to None, 3.0 to 3) or raises."""


@dataclass(frozen=True)
class _Field:
    as_is: frozenset
    check: _Check


@dataclass(frozen=True)
class _Schema:
    fields: dict[str, _Field]
    required: tuple[str, ...]


def _schema(cls: type) -> _Schema:
    """The declared fields of a record type, from its annotations."""
    hints = typing.get_type_hints(cls)
    fields, required = {}, []
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        hint = hints[f.name]
        args = typing.get_args(hint)
        nullable = type(None) in args and typing.get_origin(hint) is not dict
        if nullable:
            (hint,) = [a for a in args if a is not type(None)]
        check = _CHECKS[hint]  # a KeyError here is a record type declared with an unsupported type
        fields[f.name] = _Field(frozenset(_AS_IS[hint] + ((type(None),) if nullable else ())), check)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return _Schema(fields, tuple(required))


_SCHEMAS: dict[type, _Schema] = {}


@dataclass(kw_only=True)
class Record:
    """Base of every record type: the declared fields plus whatever else the line held."""

    extra: dict[str, Any] = field(default_factory=dict)
    """Fields this type does not declare, as written (non-finite numbers as None)."""

    @classmethod
    def validate(cls, obj: Any) -> dict[str, Any]:
        """The line's object with every value checked, or RecordError: declared fields converted
        (NaN to None, 3.0 to 3), undeclared ones kept (non-finite numbers as None).

        What :meth:`parse` checks, without building an object, for readers that keep columns
        rather than records (the console's metric series). The object itself comes back when
        nothing needed converting (the common case): treat it as read-only."""
        if type(obj) is not dict:
            raise RecordError(f"expected a JSON object, got {describe(obj)}")
        schema = _SCHEMAS.get(cls) or _SCHEMAS.setdefault(cls, _schema(cls))
        for name in schema.required:
            if name not in obj:
                raise RecordError(f"field {name!r} is missing")
        out = None  # a copy, made only when a value changes
        for key, value in obj.items():
            f = schema.fields.get(key)
            if f is None:  # a field this type does not declare: kept as written
                if type(value) in _PLAIN or _finite(value):
                    continue
                new = null_non_finite(value)
            else:
                if type(value) in f.as_is and (type(value) is not float or value - value == 0.0):
                    continue
                new = f.check(value, key)
            if new is not value:
                if out is None:
                    out = dict(obj)
                out[key] = new
        return obj if out is None else out

    @classmethod
    def parse(cls: type[R], obj: Any) -> R:
        """The record a decoded JSON line holds, or RecordError saying what is wrong with it."""
        values = cls.validate(obj)
        declared = _SCHEMAS[cls].fields
        return cls(**{k: v for k, v in values.items() if k in declared}, extra={k: v for k, v in values.items() if k not in declared})

    def to_dict(self) -> dict[str, Any]:
        """The record as a JSON object: declared fields that hold a value, then ``extra``.

        A declared field that is null reads the same as an absent one, so it is left out."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**{k: v for k, v in out.items() if v is not None}, **self.extra}


# --- metrics.jsonl ---------------------------------------------------------------------------------


@dataclass(kw_only=True)
class StepRecord(Record):
    """One line of metrics.jsonl: a logged training step (the loop's ``ctx.hub.log``)."""

    step: int
    """The run's global step; after a resume, steps are logged again from the checkpoint's."""
    stage: str | None = None
    stage_step: int | None = None
    total_steps: int | None = None
    epoch: int | None = None
    batch: int | None = None
    losses: dict[str, float | None] = field(default_factory=dict)
    """Loss terms by name; None where the value was NaN/inf (a diverging step)."""
    lr: float | None = None
    samples_per_sec: float | None = None
    steps_per_sec: float | None = None
    """Training speed since the previous logged step (evaluations and checkpoint writes left out)."""
    wall_steps_per_sec: float | None = None
    """Steps per second of wall time since this stage began (or resumed), evaluations and checkpoint
    writes included: the pace the ETA assumes (:func:`voltx.runs.store.eta_seconds`)."""
    time: float | None = None
    attempt: int | None = None
    """Which attempt (1 = first start, 2 = first resume, ...) logged the step."""


def parse_step(obj: Any) -> StepRecord:
    return StepRecord.parse(obj)


# --- events.jsonl ----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Event(Record):
    """One line of events.jsonl. Kinds without a type of their own (start, stage_start, data,
    rar, ...) are read as this, their fields in ``extra``."""

    kind: str
    time: float | None = None
    step: int | None = None


@dataclass(kw_only=True)
class Evaluation(Event):
    """Metrics of one evaluation, named ``<stage>/<metric>``; a later evaluation's value wins."""

    metrics: dict[str, float | None]
    stage: str | None = None
    epoch: int | None = None


@dataclass(kw_only=True)
class Deliverable(Event):
    """A deliverable's verdict (:meth:`voltx.plugin_specs.Deliverable.judge`): value, threshold, baseline, ablations, margin, passed."""

    metric: str
    passed: bool
    op: str | None = None
    threshold: float | None = None
    value: float | None = None
    description: str | None = None
    baseline: float | None = None
    """The strongest trivial baseline's value (``baseline_metric``); None in runs from before baselines."""
    baseline_metric: str | None = None
    baselines: dict[str, float | None] | None = None
    ablations: dict[str, float | None] | None = None
    margin: float | None = None
    beat_baseline: bool | None = None
    """Whether the value beat the strongest baseline by more than the margin (None: not measured)."""
    reason: str | None = None
    """Why the verdict failed (below threshold, not past the baseline by the margin), or None."""

    VERDICT_FIELDS = ("metric", "op", "threshold", "value", "passed", "description", "baseline", "baseline_metric",
                      "baselines", "ablations", "margin", "beat_baseline", "reason")

    def verdict(self) -> dict[str, Any]:
        """The verdict's fields (None where a run from before baselines recorded none), as
        ``voltx report --json`` and ``voltx export --deliverables`` write them."""
        return {name: getattr(self, name) for name in self.VERDICT_FIELDS}

    @classmethod
    def validate(cls, obj: Any) -> dict[str, Any]:
        values = super().validate(obj)
        op = values.get("op")
        if op is not None and op not in COMPARISONS:  # a verdict against an unknown comparison means nothing
            raise RecordError(f"field 'op' expected one of {' '.join(COMPARISONS)}, got {describe(op)}")
        return values


@dataclass(kw_only=True)
class Alert(Event):
    """An alert rule fired (loss spike, stall, a curriculum gate); ``message`` is plain text."""

    rule: str
    message: str
    severity: str | None = None


@dataclass(kw_only=True)
class Checkpoint(Event):
    """A checkpoint committed at ``step``; ``seconds`` it took to write."""

    step: int = field()  # required here: a bare ``step: int`` would inherit Event's default None
    stage: str | None = None
    path: str | None = None
    seconds: float | None = None


@dataclass(kw_only=True)
class Resumed(Event):
    """A new attempt started in the run directory from the checkpoint at ``from_step``."""

    from_step: int | None = None
    attempt: int | None = None


@dataclass(kw_only=True)
class End(Event):
    """An attempt ended: its status and exit code."""

    status: str
    exit_code: int | None = None
    message: str | None = None


@dataclass(kw_only=True)
class CurriculumStart(Event):
    """``voltx run curriculum`` started: the config file its phases read (``""``: the built-in
    defaults) and the phases in order. A resumed curriculum hands its phases the same file."""

    config: str
    phases: list[str] | None = None


@dataclass(kw_only=True)
class CurriculumPhase(Event):
    """A curriculum phase's child run ``started`` / ``finished`` / ``preempted`` / ``failed``; the
    latest one per phase tells a resumed curriculum what is done and which run to resume."""

    phase: str
    status: str
    run_dir: str
    resumed: bool | None = None
    argv: list[str] | None = None
    exit_code: int | None = None
    passed: int | None = None
    total: int | None = None
    missed: list[str] | None = None


@dataclass(kw_only=True)
class LinkedRun(Event):
    """A child run another run started (:mod:`voltx.runs.linked`, e.g. ``voltx run lvm-sweep``):
    ``started`` / ``finished`` / ``preempted`` / ``failed``; the latest one per ``label`` tells a
    resumed parent what is done and which run to resume."""

    label: str
    status: str
    run_dir: str
    exit_code: int | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    "evaluation": Evaluation,
    "deliverable": Deliverable,
    "alert": Alert,
    "checkpoint": Checkpoint,
    "resumed": Resumed,
    "end": End,
    "curriculum_start": CurriculumStart,
    "curriculum_phase": CurriculumPhase,
    "linked_run": LinkedRun,
}


def parse_event(obj: Any) -> Event:
    """The event a decoded line holds, typed by its kind; RecordError when it is not one."""
    kind = obj.get("kind") if type(obj) is dict else None
    return EVENT_TYPES.get(kind, Event).parse(obj) if type(kind) is str else Event.parse(obj)


# --- run.json --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Manifest(Record):
    """run.json: what the writer (``RunWriter``) keeps current about the run as a whole.

    Read once, through :func:`voltx.runs.layout.load_manifest`: a manifest with a declared field of
    the wrong type (``"pid": "abc"``, ``"exit_code": "x"``) is damaged as a whole and none of its
    fields is shown or acted on (not its pid, not its status), as a damaged line is skipped whole.
    Fields the writer has not set yet (``ended_at``, ``exit_code`` while running) are null."""

    format_version: int = 1
    id: str | None = None
    phase: str | None = None
    preset: str | None = None
    status: str | None = None
    """running, then finished / failed / preempted / diverged / interrupted (the last attempt's end)."""
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    message: str | None = None
    pid: int | None = None
    """The last attempt's process; the writer lock (not this pid) tells whether it is alive."""
    host: str | None = None
    stage: str | None = None
    total_steps: int | None = None
    last_checkpoint_step: int | None = None
    device: str | None = None
    code_version: str | None = None
    python: str | None = None
    argv: list[str] | None = None
    argv_resume: list[str] | None = None
    overrides: list[str] | None = None
    """The command's KEY=VALUE overrides, what a requeued ``--resume`` command is compared with
    (runs from before this field: overrides.txt)."""
    attempts: list[dict] = field(default_factory=list)
    """One object per start or resume (pid, host, started_at, resumed_from_step, then how it ended)."""
