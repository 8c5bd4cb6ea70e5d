"""training_config.toml -> dataclasses, strictly; dotted overrides; TOML writing.

The tables every run has (``[paths]``, ``[hardware]``, ``[run]``) are defined here; a phase's
``[<phase>]`` table is the ``config_class`` of its PhaseSpec, found in the plugin registry.

Precedence: CLI override > preset > config file > dataclass default. Unknown keys and
wrong types are :class:`ConfigError` naming the file and line (or the override), the
key, the expected type and the closest valid key. A file is checked as a whole: every
problem in it is collected and reported in one error (``ConfigError.problems``), so a user
fixes them in one pass instead of one per run.

Presets are ``[<phase>.presets.<name>]`` tables of the file, plus those a phase ships as a
``PRESETS: ClassVar[dict[str, dict]]`` on its config class (how a plugin phase has a
``--preset quick`` without a config file); a file's preset of the same name replaces the shipped one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from voltx.errors import ConfigError, MissingInputError, closest

DEFAULT_CONFIG_NAME = "training_config.toml"


# --- the tables every run has (a phase's own table is its spec's config_class) ------------


@dataclass
class PathsConfig:
    checkpoints_dir: str = "checkpoints"
    """Where finished phases publish their artifacts (code_encoder.safetensors ...)."""
    runs_dir: str = "runs"
    """The run store root (also --runs-dir or VOLTX_RUNS_DIR)."""


@dataclass
class HardwareConfig:
    device: str = "auto"
    """auto (CUDA when available, else CPU), cpu, cuda or cuda:N."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast precision of training and evaluation: "bf16" (CUDA and CPU), "fp16" (CUDA, with a
    gradient scaler whose state is checkpointed) or "fp32" (no autocast)."""
    deterministic: bool = True
    """Ask torch for deterministic kernels (exact resume on GPU needs it)."""
    grad_accum: int = 1
    """Micro-batches each batch is split into: gradients accumulate over them and the optimizer
    steps once, so a phase's batch_size trains in 1/N of the activation memory."""
    auto_batch: bool = False
    """Measure free memory (GPU, else host RAM) and the activations of one batch before step 1 and
    split batches into as many micro-batches as needed to fit (replaces grad_accum; recorded in run.json)."""
    activation_checkpointing: bool = False
    """Recompute the large VFNs' (ScaledVfn) block activations during backward instead of keeping
    them: less memory for about a third more compute."""
    compile: bool = False
    """torch.compile the stage's model; when compiling fails the run goes on uncompiled (one line says why)."""
    tf32: bool = True
    """TF32 matmuls and convolutions on Ampere or newer GPUs; no effect elsewhere (run.json records which)."""
    prefetch: int = 2
    """Batches a background thread collates (and pins) ahead of the training thread, for stages
    that opt in; 0 collates on the training thread."""
    strategy: Literal["ddp", "fsdp"] = "ddp"
    """With --nproc-per-node N > 1: "ddp" (each process holds the model, gradients averaged) or "fsdp"
    (FSDP2 fully_shard of the large modules a phase names, e.g. F3's ScaledVfn; the rest as ddp;
    README: Multi-GPU)."""
    fsdp_min_parameters: int = 10_000_000
    """strategy = "fsdp" is refused when the modules a phase shards hold fewer parameters than this:
    such a model fits one device, and sharding it costs more communication than it saves memory."""
    collective_timeout: float = 1800.0
    """Seconds a distributed run's processes wait for each other in one collective before the
    job stops with exit 86 (a dead or hung process); rank 0's evaluation must fit in it."""

    def check(self) -> None:
        """The bounds a type cannot say: ConfigError (exit 78) before anything is written."""
        for key, low in (("grad_accum", 1), ("prefetch", 0), ("fsdp_min_parameters", 0)):
            value = getattr(self, key)
            if value < low:
                raise ConfigError(f"hardware.{key} must be at least {low}, got {value}; the default is {key} = "
                                  f"{getattr(HardwareConfig, key)}.")
        if self.auto_batch and self.grad_accum != 1:
            raise ConfigError(f"hardware.auto_batch = true chooses the micro-batches itself, but hardware.grad_accum = "
                              f"{self.grad_accum}; set one of them (grad_accum = 1 with auto_batch).")


@dataclass
class RunConfig:
    seed: int = 42
    """Seeds python, numpy and torch generators; resume restores their exact states."""
    log_every: int = 10
    """Log a metrics record (and a progress line) every N optimizer steps."""
    checkpoint_every: int = 0
    """Checkpoint every N steps; 0 = only at the end of each epoch (and on preemption)."""
    keep_checkpoints: int = 2
    """Committed checkpoints kept per run; older ones are pruned after a new one commits."""
    sinks: list[str] = field(default_factory=list)
    """Sinks that get every record of the run live, by name (see `voltx plugins`): "wandb",
    "tensorboard", "mlflow" (each an optional extra), "csv" or a plugin's; also --sink."""
    mirror: str = ""
    """An fsspec URL (s3://bucket/runs, gs://, az://, hf://, a local or NFS path) that each committed
    checkpoint and the run's files are copied to in the background; "" = no mirror. A resume
    (--resume auto) on a machine without the run pulls it from there."""
    mlflow_checkpoints: bool = False
    """With the mlflow sink: also log each committed checkpoint as MLflow artifacts (a copy per checkpoint)."""
    alert_rules: list[str] = field(default_factory=lambda: ["loss-spike", "throughput-drop", "low-disk"])
    """Alert rules checked on every logged step."""
    telemetry_interval: float = 1.0
    """Seconds between system.jsonl samples (GPU, CPU, RAM, disk) by the telemetry sidecar; 0 disables it."""


GLOBAL_TABLES: dict[str, type] = {"paths": PathsConfig, "hardware": HardwareConfig, "run": RunConfig}


def phase_tables(plugins: Any = None) -> dict[str, type]:
    """``{phase: config_class}`` of every phase in the plugin registry (``plugins``, else the
    installed ones). Built-in and third-party phases alike: a phase that is not installed,
    disabled (``VOLTX_DISABLE_PLUGINS``) or failed to load has no table, so its table in a
    file is an unknown key."""
    if plugins is None:
        from voltx.plugins import load_plugins  # the plugin loader imports this module

        plugins = load_plugins()
    return {name: spec.config_class for name, spec in plugins.specs("phases").items()}


def check_shipped_presets(phase: str, cls: type, presets: Mapping[str, Mapping[str, Any]]) -> None:
    """The presets a phase ships (``PRESETS`` on its config class) against that class, when the
    phase registers: a plugin's typo is a registration failure naming the phase's preset, not an
    error blamed on a user's config file."""
    for preset, overrides in presets.items():
        found: list[str] = []
        if not isinstance(overrides, Mapping):
            found.append(f"preset {preset!r} must be a table of overrides, got {_value_name(overrides)}")
        else:
            _build(cls, dict(overrides), phase, _Locator(f"phase {phase!r} preset {preset!r}", ""), found)
        if found:
            raise ValueError("; ".join(found))


def config_tables(plugins: Any = None) -> set[str]:
    """Top-level tables of the config: an override whose first part is none of them is the phase's."""
    return {*GLOBAL_TABLES, *phase_tables(plugins)}


@dataclass
class Config:
    """A parsed config file: the global tables, every phase table, and the presets."""

    paths: PathsConfig
    hardware: HardwareConfig
    run: RunConfig
    phases: dict[str, Any]
    presets: dict[str, dict[str, dict]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    def phase(self, name: str) -> Any:
        return self.phases[name]


def default_config_file() -> Path | None:
    """./training_config.toml, else the curriculum shipped with voltx (so presets such as
    ``--preset quick`` work from any directory)."""
    local = Path(DEFAULT_CONFIG_NAME)
    if local.exists():
        return local
    here = Path(__file__).resolve().parent
    for candidate in (here / "default_config.toml", here.parent / DEFAULT_CONFIG_NAME):  # wheel, then checkout
        if candidate.exists():
            return candidate
    return None


# --- parsing ------------------------------------------------------------------------------


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    if not path.exists():
        raise MissingInputError(
            f"config file {path} does not exist. Pass --config PATH, or run from the directory "
            f"that holds {DEFAULT_CONFIG_NAME}."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8.") from None
    except OSError as exc:
        raise MissingInputError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}. Fix the line it names.") from None


def load_config(
    path: str | Path | None,
    phase_classes: dict[str, type] | None = None,
) -> Config:
    """Parse a config file (None = defaults only) against the global tables and the phases'
    tables (``phase_classes``; None = :func:`phase_tables` of the installed plugins)."""
    raw, text, source = ({}, "", "<defaults>")
    if path is not None:
        raw, text = read_toml(Path(path))
        source = str(path)
    return build_config(raw, phase_classes, source=source, text=text)


def build_config(
    raw: dict[str, Any],
    phase_classes: dict[str, type] | None = None,
    *,
    source: str = "<defaults>",
    text: str = "",
) -> Config:
    """Build every table of ``raw``; raise one ConfigError listing every problem found."""
    schema = phase_tables() if phase_classes is None else dict(phase_classes)
    raw = copy.deepcopy(raw)
    where = _Locator(source, text)
    problems: list[str] = []
    for key in raw:
        if key not in GLOBAL_TABLES and key not in schema:
            valid = [*GLOBAL_TABLES, *schema]
            problems.append(where.unknown(key, "", valid))
    presets: dict[str, dict[str, dict]] = {}
    for name in schema:
        table = raw.get(name)
        if isinstance(table, dict) and "presets" in table:
            p = table.pop("presets")
            if not isinstance(p, dict) or not all(isinstance(v, dict) for v in p.values()):
                problems.append(f"{where.at(f'{name}.presets')}: [{name}.presets.<name>] must be tables of overrides")
                continue
            presets[name] = p
    for name, cls in schema.items():  # presets a phase ships (a plugin's quick/full); the file's win by name
        shipped = getattr(cls, "PRESETS", None)
        if shipped:
            presets[name] = {**copy.deepcopy(dict(shipped)), **presets.get(name, {})}
    globals_ = {name: _build(cls, raw.get(name, {}), name, where, problems) for name, cls in GLOBAL_TABLES.items()}
    phases = {name: _build(cls, raw.get(name, {}), name, where, problems) for name, cls in schema.items()}
    for name, p in presets.items():  # a typo in a preset fails now, not at run time
        for preset_name, overrides in p.items():
            in_preset = _Locator(source, text, alias=(name, f"{name}.presets.{preset_name}"))
            found: list[str] = []
            _build(schema[name], _deep_merge(raw.get(name, {}), overrides), name, in_preset, found)
            # the merged table repeats the base table's problems (same message): report those once
            problems.extend(f"{m} (in preset {preset_name!r}, [{name}.presets.{preset_name}])" for m in found if m not in problems)
    if problems:
        problems.sort(key=lambda m: _line_number(source, m))  # in file order, as the user reads it
        raise ConfigError(_problems_message(source, problems), problems=problems)
    return Config(phases=phases, presets=presets, raw=raw, source=source, **globals_)


def _line_number(source: str, message: str) -> int:
    m = re.match(re.escape(source) + r":(\d+)", message)
    return int(m.group(1)) if m else 0


def _problems_message(source: str, problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{source}: {len(problems)} problems:\n" + "\n".join(f"  - {m}" for m in problems)


def resolve_for_phase(
    cfg: Config,
    phase: str,
    *,
    preset: str | None = None,
    overrides: list[str] = (),
) -> Config:
    """Apply a preset and CLI overrides (``encoder.lr=3e-4`` or ``hardware.device=cpu``),
    against the phase tables ``cfg`` was built with."""
    raw = copy.deepcopy(cfg.raw)
    if preset:
        available = cfg.presets.get(phase, {})
        if preset not in available:
            hint = closest(preset, available)
            raise ConfigError(
                f"phase {phase!r} has no preset {preset!r}"
                + (f" (did you mean {hint!r}?)" if hint else "")
                + f". Presets in {cfg.source}: {', '.join(sorted(available)) or 'none'}."
            )
        raw[phase] = _deep_merge(raw.get(phase, {}), available[preset])
    schema = {name: type(table) for name, table in cfg.phases.items()}
    for item in overrides:
        key, value = parse_override(item)
        parts = key.split(".")
        if parts[0] not in GLOBAL_TABLES and parts[0] not in schema:
            parts = [phase, *parts]
        _set_override(raw, parts, value, item, schema)
    out = build_config(raw, schema, source=cfg.source)
    out.presets = cfg.presets
    return out


def parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", key):
        raise ConfigError(f"override {item!r} is not key=value (example: encoder.lr=3e-4)")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # bare words (device=cpu) are strings
    return key, value


def _set_override(raw: dict, parts: list[str], value: Any, item: str, schema: dict[str, type]) -> None:
    cls: Any = GLOBAL_TABLES.get(parts[0]) or schema[parts[0]]
    node = raw.setdefault(parts[0], {})
    for depth, part in enumerate(parts[1:], start=1):
        names = {f.name: f for f in dataclasses.fields(cls)}
        dotted = ".".join(parts[:depth])
        if part not in names:
            hint = closest(part, names)
            raise ConfigError(
                f"override {item!r}: unknown key {'.'.join(parts[: depth + 1])!r}"
                + (f" (did you mean '{dotted}.{hint}'?)" if hint else "")
                + f". Valid keys under [{dotted}]: {', '.join(names)}."
            )
        ftype = _hints(cls)[part]
        last = depth == len(parts) - 1
        if last:
            full = ".".join(parts)
            node[part] = _coerce(value, ftype, full, _Locator(f"override {item!r}", ""))
        elif dataclasses.is_dataclass(ftype):
            node = node.setdefault(part, {})
            cls = ftype
        else:
            raise ConfigError(f"override {item!r}: {'.'.join(parts[: depth + 1])} is {_type_name(ftype)}, not a table")


# --- strict construction ------------------------------------------------------------------


def _build(cls: type, data: Any, path: str, where: "_Locator", problems: list[str]) -> Any:
    """``cls`` from a table; each bad key is recorded in ``problems`` and left at its default."""
    if not isinstance(data, dict):
        problems.append(f"{where.at(path)}: [{path}] must be a table, got {_value_name(data)}")
        return cls()
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            problems.append(where.unknown(key, path, list(fields)))
            continue
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            kwargs[key] = _build(hints[key], value, f"{path}.{key}", where, problems)
            continue
        try:
            kwargs[key] = _coerce(value, hints[key], f"{path}.{key}", where)
        except ConfigError as exc:
            problems.append(str(exc) + _default_hint(fields[key]))
    return cls(**kwargs)


def _default_hint(f: dataclasses.Field) -> str:
    """"; the default is ..." for a field with a plain default (what to write instead)."""
    if f.default is dataclasses.MISSING:
        return ""
    try:
        return f"; the default is {f.name} = {toml_value(f.default)}"
    except TypeError:
        return ""


def _coerce(value: Any, tp: Any, path: str, where: "_Locator") -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        found: list[str] = []
        built = _build(tp, value, path, where, found)
        if found:
            raise ConfigError(_problems_message(where.source, found), problems=found)
        return built
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where.at(path)}: {path} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str) and item_tp is str:
            return [value]  # a single path where a list is expected
        if not isinstance(value, list):
            raise ConfigError(f"{where.at(path)}: {path} expects {_type_name(tp)}, got {_value_name(value)}")
        return [_coerce(v, item_tp, f"{path}[{i}]", where) for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(float(value)):
                raise ConfigError(f"{where.at(path)}: {path} must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    raise ConfigError(f"{where.at(path)}: {path} expects {_type_name(tp)}, got {_value_name(value)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _value_name(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}" if not isinstance(value, dict) else "a table"


def _deep_merge(base: dict, top: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


RETIRED_KEYS = {
    "hardware.num_gpus": "nothing read it: the processes a launcher such as torchrun starts set the GPU count",
    "paths.data_dir": "nothing read it: each phase's data lists name their files",
    "d1": "no D1 phase exists yet; its table returns with the phase",
    "ja": "no JA phase exists yet; its table returns with the phase",
    "s": "no S phase exists yet; its table returns with the phase",
}
"""Keys and tables older config files have that voltx stopped reading: an error that says so
(the run would otherwise silently ignore a setting the user thinks is in force)."""


class _Locator:
    """Finds the line of a dotted key in the TOML text, for messages like file:line."""

    def __init__(self, source: str, text: str, alias: tuple[str, str] | None = None):
        self.source, self.lines = source, text.splitlines()
        self.alias = alias  # (table, preset table): a preset's keys are looked up in the preset first

    def at(self, dotted: str) -> str:
        line = None
        if self.alias and dotted.startswith(self.alias[0] + "."):
            line = self._line_of((self.alias[1] + dotted[len(self.alias[0]) :]).split("."))
        line = line or self._line_of(dotted.split("."))
        return f"{self.source}:{line}" if line else self.source

    def unknown(self, key: str, table: str, valid) -> str:
        dotted = f"{table}.{key}" if table else key
        if dotted in RETIRED_KEYS:  # an older config file, not a typo: say so, and what to do
            what = f"[{dotted}]" if not table else repr(dotted)
            return f"{self.at(dotted)}: {what} is no longer read ({RETIRED_KEYS[dotted]}); delete it from {self.source}."
        hint = closest(key, valid)
        where = f"[{table}]" if table else "the top level"
        return (
            f"{self.at(dotted)}: unknown key {dotted!r} in {where}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + f". Valid keys: {', '.join(valid)}."
        )

    def _line_of(self, parts: list[str]) -> int | None:
        table: list[str] = []
        for number, line in enumerate(self.lines, start=1):
            stripped = line.strip()
            header = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", stripped)
            if header:
                table = [p.strip().strip('"') for p in header.group(1).split(".")]
                if table == parts:
                    return number
                continue
            m = re.match(r"^([A-Za-z0-9_\-\.\"]+)\s*=", stripped)
            if m and table + [p.strip('"') for p in m.group(1).split(".")] == parts:
                return number
        return None


# --- writing ------------------------------------------------------------------------------


def to_toml(tables: dict[str, Any], header: str = "") -> str:
    """Write dataclasses / dicts of plain values as TOML (for the run's resolved config)."""
    out: list[str] = [header] if header else []

    def emit(prefix: str, obj: Any) -> None:
        data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else obj
        scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
        tables_ = {k: v for k, v in data.items() if isinstance(v, dict)}
        out.append(f"\n[{prefix}]")
        for key, value in scalars.items():
            out.append(f"{key} = {toml_value(value)}")
        for key, value in tables_.items():
            emit(f"{prefix}.{key}", value)

    for name, obj in tables.items():
        emit(name, obj)
    return "\n".join(out).lstrip("\n") + "\n"


def toml_value(value: Any) -> str:
    """``value`` as one line of TOML: the only place voltx writes a Python value as TOML text
    (the resolved config.toml, every ``KEY=VALUE`` override a launcher, the curriculum or a
    plugin command passes on). One line matters: overrides.txt holds one override per line.
    tomli_w (not a dependency) always splits arrays over lines, hence this small writer."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + _TOML_ESCAPES.sub(lambda m: _TOML_ESCAPE_OF.get(m.group(), f"\\u{ord(m.group()):04x}"), value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_TOML_ESCAPE_OF = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}
_TOML_ESCAPES = re.compile(r'[\\"\x00-\x08\x0a-\x1f\x7f]')  # TOML basic strings forbid raw control characters but tab


def override_item(key: str, value: Any) -> str:
    """The ``KEY=VALUE`` text ``voltx run`` takes for a structured override."""
    return f"{key}={toml_value(value)}"


def override_items(overrides: Mapping[str, Any] | Iterable[str]) -> tuple[str, ...]:
    """Overrides as the ``KEY=VALUE`` texts a run records (overrides.txt, run.json) and a child
    process takes: a mapping ``{dotted key: Python value}`` (what plugin commands pass) is
    written here; strings (the command line, the console's dialog) pass through as written."""
    if isinstance(overrides, Mapping):
        return tuple(override_item(key, value) for key, value in overrides.items())
    return tuple(overrides)
