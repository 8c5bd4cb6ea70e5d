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
from typing import Any, Callable, Mapping

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


_HIGHER_IS_BETTER = {">": True, ">=": True, "<": False, "<=": False}


@dataclass(frozen=True)
class Deliverable:
    """A success criterion of a phase, earned only against what needs no model.

    ``metric op threshold`` on an evaluation is not enough on its own: the verdict passes
    only when the value also beats the strongest of ``baselines`` (no-model methods on the
    same inputs: frame mean, context mean, majority label, copy, K = 1 codebook, nearest
    training answer) by more than ``margin``. ``ablations`` (the same model with the
    component the metric claims to measure switched off: RAR off, VFN off, encoder
    untrained) are shown beside it. The rule is written in docs/foundation.md; this type
    is where it is enforced: a deliverable without a baseline cannot be declared.
    """

    metric: str
    """Key of the evaluated metric, e.g. ``valid/retrieval_top1``."""
    op: str
    """One of ``> >= < <=``."""
    threshold: float
    description: str = ""
    """Where the threshold comes from (the seed's success criteria, the original's figure)."""
    baselines: tuple[str, ...] = ()
    """Metric keys of the trivial methods, logged in the same evaluation as ``metric``."""
    ablations: tuple[str, ...] = ()
    """Metric keys of the ablations, logged in the same evaluation; shown, not judged."""
    margin: float = 0.0
    """How far (in the metric's units) the value must be past the strongest baseline."""

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"deliverable {self.metric!r}: op must be one of {sorted(_OPS)}, got {self.op!r}")
        if isinstance(self.baselines, str) or isinstance(self.ablations, str):
            raise TypeError(f"deliverable {self.metric!r}: baselines and ablations are tuples of metric keys")
        if not self.baselines:
            raise ValueError(
                f"deliverable {self.metric!r}: name at least one baseline metric, the strongest method that "
                "needs no trained model on the same inputs (docs/foundation.md, 'A verdict must be earned')"
            )
        if not self.margin >= 0:
            raise ValueError(f"deliverable {self.metric!r}: margin must be >= 0, got {self.margin!r}")

    @property
    def higher_is_better(self) -> bool:
        return _HIGHER_IS_BETTER[self.op]

    def passed(self, value: float) -> bool:
        """The threshold half of the rule (:meth:`judge` adds the baseline half)."""
        return _OPS[self.op](float(value), float(self.threshold))

    def describe(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"

    def judge(self, metrics: Mapping[str, float | None]) -> dict[str, Any]:
        """The verdict on ``metrics`` (one evaluation's values), as the run store records it.

        Fields: metric, op, threshold, value, passed, description, baseline (the strongest
        baseline's value) and baseline_metric, baselines and ablations (every declared key
        with its value, None when not measured), margin, beat_baseline (None when either side
        was not measured), and reason (every condition it failed, or None).
        """
        value = _measured(metrics.get(self.metric))
        baselines = {key: _measured(metrics.get(key)) for key in self.baselines}
        ablations = {key: _measured(metrics.get(key)) for key in self.ablations}
        measured = {k: v for k, v in baselines.items() if v is not None}
        best = max if self.higher_is_better else min
        baseline_metric = best(measured, key=measured.__getitem__) if measured else None
        baseline = measured.get(baseline_metric) if baseline_metric else None
        beat_baseline = None
        failures = []  # every condition it misses, so "below threshold" never hides "below a no-model method"
        if value is None:
            failures.append(f"{self.metric} was not measured")
        else:
            if not self.passed(value):
                failures.append(f"{value:.4g} does not meet the threshold {self.op} {self.threshold:g}")
            if baseline is not None:
                gap = value - baseline if self.higher_is_better else baseline - value
                beat_baseline = gap > self.margin
                if not beat_baseline:
                    failures.append(f"{value:.4g} does not beat the baseline {baseline_metric} = {baseline:.4g} "
                                    f"by more than {self.margin:g}")
        if len(measured) < len(baselines):
            failures.append("baseline not measured: " + ", ".join(k for k, v in baselines.items() if v is None))
        reason = "; ".join(failures) or None
        return {
            "metric": self.metric, "op": self.op, "threshold": self.threshold, "value": value,
            "passed": reason is None, "description": self.description,
            "baseline": baseline, "baseline_metric": baseline_metric, "baselines": baselines,
            "ablations": ablations, "margin": self.margin, "beat_baseline": beat_baseline, "reason": reason,
        }


def _measured(value: Any) -> float | None:
    """A metric's value as a float, or None when it was not measured (absent, null, NaN)."""
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


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
    check: str | Callable[..., Any] | None = None
    """``"module:function"`` (or a callable) taking the phase's settings (its config dataclass, preset
    and overrides applied): raises a :class:`voltx.errors.VoltxError` when the run's input cannot
    work (a malformed data file, a base model that is not one), before the run directory is
    created or a resumed run is reopened, so bad input leaves nothing behind. None: nothing to check."""
    sharded: str | Callable[..., Any] | None = None
    """``"module:function"`` (or a callable) taking the phase's settings and returning ``{module: parameters}``
    of the modules its stages shard under ``hardware.strategy = "fsdp"`` (each stage's ``shard``), so a
    distributed launch refuses a model too small to shard before the run exists. None: nothing to shard."""
    starts_runs: bool = False
    """The phase starts other phases as runs of their own (:mod:`voltx.runs.chain`, :mod:`voltx.runs.linked`):
    ``voltx run <name> --nproc-per-node N`` runs it once, in one process, and each run it starts gets the
    distributed options instead (:func:`voltx.train.launcher.launch_request`)."""
    targets: str = ""
    """Where the deliverables' targets can be met, said when a quick run beat its baselines but
    missed them (e.g. "on the handoff's GTR-T5 vectors, not the built-in corpus"); empty: the
    phase's full recipe, ``voltx run <name>``, sized for a GPU (the built-in phases)."""

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config_class):
            raise TypeError(f"phase {self.name!r}: config_class must be a dataclass, got {self.config_class!r}")
        shipped = getattr(self.config_class, "PRESETS", None)
        if shipped:  # the presets the phase ships (voltx.config): a typo fails its registration, not a user's run
            from voltx.config import check_shipped_presets  # import-light: errors and tomllib only

            check_shipped_presets(self.name, self.config_class, shipped)


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
