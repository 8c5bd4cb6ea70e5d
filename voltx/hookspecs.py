"""The voltx hook specifications (pluggy project name ``"voltx"``).

Registration hooks take a ``register`` callback (llm's idiom): the plugin calls
``register(spec)`` once per thing it provides and the core validates the spec, refuses
duplicate names and records which plugin provided what. Lifecycle hooks are called by
the training loop in the run's process. docs/plugins.md has one section per hook.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("voltx")


@hookspec
def register_phases(register):
    """Register curriculum phases: ``register(PhaseSpec(...))``.

    A phase becomes ``voltx run <name>``; its ``config_class`` defines the
    ``[<name>]`` table of training_config.toml; its ``runner`` is imported only when the
    phase runs.
    """


@hookspec
def register_converters(register):
    """Register dataset converters: ``register(ConverterSpec(...))`` (``voltx data``)."""


@hookspec
def register_strands(register):
    """Register Hard Strands (exact tools) for the intent router: ``register(StrandSpec(...))``."""


@hookspec
def register_sinks(register):
    """Register sinks: ``register(SinkSpec(...))``.

    A run enables sinks by name with ``[run].sinks = ["csv"]`` or ``--sink csv``. Each receives,
    live, every record the run store writes (steps, evaluations, verdicts, alerts, checkpoints,
    resumes, the run's end) as its declared type (:mod:`voltx.runs.records`), on a thread and a
    bounded queue of its own (:mod:`voltx.runs.sink_feed`): a slow or failing sink never slows or
    stops the run.
    """


@hookspec
def register_alert_rules(register):
    """Register alert rules: ``register(AlertRuleSpec(...))``; checked on every logged step."""


@hookspec
def register_commands(register):
    """Register extra CLI subcommands: ``register(CommandSpec(...))`` (``voltx <name>``)."""


@hookspec
def register_record_formats(register):
    """Register Volt record formats: ``register(RecordFormatSpec(...))``.

    The format's record class (a :class:`voltx.data.formats.Record` dataclass) is then known to
    :func:`voltx.data.formats.validate_dict` and ``from_dict`` by name, with the built-ins' rules
    and error messages.
    """


@hookspec
def on_run_start(run):
    """Called in the run's process after the run directory is created or resumed.

    ``run`` is the :class:`voltx.runs.store.RunWriter` (read ``run.dir``, ``run.manifest``).
    """


@hookspec
def on_step_logged(run, record):
    """Called with every metrics record the loop logs (a dict: step, losses, lr ...).

    Runs on the training thread: keep it to microseconds, or write a sink (``register_sinks``),
    which runs on a thread of its own.
    """


@hookspec
def on_run_end(run, status):
    """Called once when the run ends; ``status`` is finished, failed, preempted or diverged."""
