"""What plugins register: small frozen dataclasses, validated by the core.

Specs are import-light: anything heavy (a phase's training code, a converter's reader)
is named by a ``"module:attribute"`` string or a callable and imported only when used,
so listing plugins never imports torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Callable

NAME_RE = re.compile(r"^[a-z][a-z0-9_\-]*$")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
COMPARISONS = tuple(_OPS)
"""The comparisons a deliverable may use (the run store's readers check verdicts against these)."""


def resolve(target: str | Callable[..., Any]) -> Any:
    """Import ``"package.module:attr"`` lazily; callables pass through."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Deliverable:
    """A success criterion of a phase: ``metric op threshold`` on an evaluation."""

    metric: str
    """Key of the evaluated metric, e.g. ``valid/retrieval_top1``."""
    op: str
    """One of ``> >= < <=``."""
    threshold: float
    description: str = ""
    """Where the threshold comes from (the seed's success criteria, the original's figure)."""

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"deliverable {self.metric!r}: op must be one of {sorted(_OPS)}, got {self.op!r}")

    def passed(self, value: float) -> bool:
        return _OPS[self.op](float(value), float(self.threshold))

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class PhaseSpec:
    """A curriculum phase ``voltx run <name>`` can start."""

    name: str
    summary: str
    runner: str | Callable[..., Any]
    """``"module:function"`` taking a :class:`voltx.train.context.RunContext`; imported only to run."""
    config_class: type
    """Dataclass of the phase's ``[<name>]`` table in training_config.toml."""
    deliverables: tuple[Deliverable, ...] = ()
    artifacts: tuple[str, ...] = ()
    """File names the phase leaves in ``<run>/artifacts`` and publishes to ``[paths].checkpoints_dir``."""

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config_class):
            raise TypeError(f"phase {self.name!r}: config_class must be a dataclass, got {self.config_class!r}")


@dataclass(frozen=True)
class ConverterSpec:
    """A dataset converter: reads a dataset's own format, writes Volt JSONL records."""

    name: str
    summary: str
    formats: tuple[str, ...]
    """Volt record formats it can produce (``slot_annotated``, ``triples`` ...)."""
    factory: str | Callable[..., Any]
    hub_name: str | None = None
    """Hugging Face Hub dataset id, when the dataset streams from the Hub."""


@dataclass(frozen=True)
class StrandSpec:
    """A Hard Strand (exact tool) the intent router can dispatch to."""

    name: str
    summary: str
    factory: str | Callable[..., Any]


@dataclass(frozen=True)
class SinkSpec:
    """A metric sink: ``factory(run_dir) -> object`` with ``write(record)`` and ``close()``."""

    name: str
    summary: str
    factory: str | Callable[..., Any]


@dataclass(frozen=True)
class AlertRuleSpec:
    """An alert rule: ``factory(run_dir) -> object`` with ``check(record) -> str | None``.

    The loop feeds it every logged metrics record; a returned string becomes an
    ``alert`` event in events.jsonl (and in the console) naming the rule.
    """

    name: str
    summary: str
    factory: str | Callable[..., Any]
    severity: str = "warning"


@dataclass(frozen=True)
class CommandSpec:
    """An extra ``voltx <name>`` subcommand.

    ``configure(parser)`` adds arguments to an ``argparse`` sub-parser; ``handler(args)``
    runs it and returns an exit code (None means 0).
    """

    name: str
    help: str
    handler: str | Callable[..., Any]
    configure: Callable[[Any], None] | None = None
    aliases: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RecordFormatSpec:
    """A Volt record format a plugin adds (instruction pairs, vector sequences ...).

    ``record`` is a frozen dataclass subclassing :class:`voltx.data.formats.Record` whose
    ``FORMAT`` is ``name`` and whose ``REQUIRED`` / ``OPTIONAL`` map field names to type tags
    (``voltx.data.formats.TYPE_TAGS``); validation and messages are the built-ins' own.
    """

    name: str
    summary: str
    record: type

    def __post_init__(self) -> None:
        from voltx.data.formats import FORMATS, Record

        if self.name in FORMATS:
            raise ValueError(f"record format {self.name!r} is built in; choose another name")
        if not (isinstance(self.record, type) and issubclass(self.record, Record) and dataclasses.is_dataclass(self.record)):
            raise TypeError(f"record format {self.name!r}: record must be a dataclass subclassing voltx.data.formats.Record, got {self.record!r}")
        if self.record.FORMAT != self.name:
            raise ValueError(f"record format {self.name!r}: its record class says FORMAT = {self.record.FORMAT!r}")


SPEC_KINDS: dict[str, type] = {
    "phases": PhaseSpec,
    "converters": ConverterSpec,
    "strands": StrandSpec,
    "sinks": SinkSpec,
    "alert_rules": AlertRuleSpec,
    "commands": CommandSpec,
    "record_formats": RecordFormatSpec,
}
