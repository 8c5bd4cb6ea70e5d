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
    """A sink: ``factory(run_dir) -> object`` with ``write(record)`` and ``close()``.

    ``write`` gets every record the run store writes, as its declared type
    (:mod:`voltx.runs.records`), on the sink's own thread (:mod:`voltx.runs.sink_feed`)."""

    name: str
    summary: str
    factory: str | Callable[..., Any]
    requires: tuple[str, ...] = ()
    """Modules the sink imports (``("wandb",)``): a run naming the sink refuses to start without them."""
    extra: str | None = None
    """The voltx extra that installs them: the refusal says ``pip install "voltx[<extra>]"``."""
    check: str | Callable[..., Any] | None = None
    """``check(runs_root)`` raises a VoltxError when the sink cannot work here (a read-only store),
    before the run starts; None: nothing to check."""


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


SPEC_KINDS: dict[str, type] = {
    "phases": PhaseSpec,
    "converters": ConverterSpec,
    "strands": StrandSpec,
    "sinks": SinkSpec,
    "alert_rules": AlertRuleSpec,
    "commands": CommandSpec,
}
