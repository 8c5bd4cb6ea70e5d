"""Where things live in a run directory, and how a RUN argument finds one.

``runs/<phase>/<YYYYmmdd-HHMMSS>-<id>/`` holds run.json, config.toml, overrides.txt,
metrics.jsonl, events.jsonl, system.jsonl, stdout.log, checkpoints/, artifacts/ and lock.
This module only computes paths, reads directory listings and run.json: no torch, no writes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from voltx.errors import DataError, MissingInputError, UsageError, VoltxError
from voltx.runs.jsonl import RecordError
from voltx.runs.records import Manifest

FORMAT_VERSION = 1
ENV_RUNS_DIR = "VOLTX_RUNS_DIR"


@dataclass(frozen=True)
class RunPaths:
    dir: Path

    @property
    def manifest(self) -> Path:
        return self.dir / "run.json"

    @property
    def config(self) -> Path:
        return self.dir / "config.toml"

    @property
    def overrides(self) -> Path:
        return self.dir / "overrides.txt"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.jsonl"

    @property
    def events(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def system(self) -> Path:
        return self.dir / "system.jsonl"

    @property
    def stdout(self) -> Path:
        return self.dir / "stdout.log"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def artifacts(self) -> Path:
        return self.dir / "artifacts"

    @property
    def lock(self) -> Path:
        return self.dir / "lock"

    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def phase(self) -> str:
        return self.dir.parent.name


def configured_runs_dir(config: str | os.PathLike | None = None, overrides=()) -> str | None:
    """``[paths].runs_dir`` of the config in use, or None (:func:`configured_text`)."""
    return configured_text("paths.runs_dir", config, overrides)


def configured_text(key: str, config: str | os.PathLike | None = None, overrides=()) -> str | None:
    """The string ``key`` (``table.field``) of the config in use, or None.

    The config in use is the one ``voltx run`` reads: ``config`` (--config), else
    ./training_config.toml, else the curriculum shipped with voltx; a ``key=`` override on the
    command line replaces its value. Read tolerantly: commands that only read runs must work
    even when the config is broken (``voltx config validate`` and the run itself report it,
    with file and line)."""
    from voltx.config import default_config_file, parse_override  # light: no torch

    for item in reversed(list(overrides)):  # the last override of a key wins, as in a run
        try:
            name, value = parse_override(item)
        except VoltxError:
            continue
        if name == key and isinstance(value, str):
            return value
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    cfg = Path(config) if config else default_config_file()
    if cfg is None:
        return None
    table, _, field = key.partition(".")
    try:
        values = tomllib.loads(cfg.read_text(encoding="utf-8")).get(table, {})
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        return None
    configured = values.get(field) if isinstance(values, dict) else None
    return configured if isinstance(configured, str) else None


RUNS_DIR_PRECEDENCE = ("default: $VOLTX_RUNS_DIR, else [paths].runs_dir of the config in use (--config, else "
                       "./training_config.toml, else the shipped one), else ./runs")
"""How every command (and the console) picks the runs root when --runs-dir is not given
(:func:`runs_root`), as their --help says it."""


def runs_root(explicit: str | os.PathLike | None = None, config: str | os.PathLike | None = None, overrides=()) -> Path:
    """The runs root of every command (run, resume, --tmux, status, logs, report, console):
    --runs-dir > VOLTX_RUNS_DIR > [paths].runs_dir of the config in use > ./runs.

    ``explicit`` is --runs-dir, ``config`` is --config and ``overrides`` the command's
    KEY=VALUE overrides (see :func:`configured_runs_dir`)."""
    for candidate in (explicit, os.environ.get(ENV_RUNS_DIR)):
        if candidate:
            return Path(candidate).expanduser()
    configured = configured_runs_dir(config, overrides)
    return Path(configured).expanduser() if configured else Path("runs")


RUN_ID_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-<6 hex>``: sorts by start time, unique without coordination."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """The id itself if it has the shape of a generated one, else a UsageError."""
    if not RUN_ID_RE.match(run_id):
        raise UsageError(f"run id {run_id!r} is not of the form YYYYmmdd-HHMMSS-xxxxxx (6 hex digits), e.g. {new_run_id()}.")
    return run_id


def new_run_dir(root: Path, phase: str, run_id: str | None = None) -> Path:
    """A fresh run directory path (not created). With ``run_id`` (chosen by a launcher that
    must know it before the run starts) that id is used, and refused if it exists."""
    if run_id is not None:
        path = root / phase / check_run_id(run_id)
        if path.exists():
            raise UsageError(f"run {path} already exists; a new run needs a new --run-id (or none).")
        return path
    for _ in range(100):
        path = root / phase / new_run_id()
        if not path.exists():
            return path
    raise RuntimeError("could not find a free run directory name")  # 16M ids per second


def is_run_dir(path: Path) -> bool:
    return (path / "run.json").is_file()


def list_run_dirs(root: Path) -> list[Path]:
    """Every run under the root, oldest first: by directory name, which starts with the time
    to the second; runs started in the same second are ordered by run.json's created_at."""
    if not root.is_dir():
        return []
    found = []
    for phase_dir in root.iterdir():
        if phase_dir.is_dir():
            found.extend(p for p in phase_dir.iterdir() if p.is_dir() and is_run_dir(p))
    stamps = Counter(p.name[:15] for p in found)

    def created_at(p: Path) -> float:
        if stamps[p.name[:15]] < 2:
            return 0.0  # the name alone orders it: no need to read run.json
        return load_manifest(p).record.created_at or 0.0

    return sorted(found, key=lambda p: (p.name[:15], created_at(p), p.name, p.parent.name))


MISSING_MANIFEST = "run.json missing or unreadable"


@dataclass(frozen=True)
class RunManifest:
    """run.json as read, checked once against :class:`voltx.runs.records.Manifest`."""

    record: Manifest
    """The checked fields; all unset (``Manifest()``) when the file is missing or damaged."""
    raw: dict = field(default_factory=dict)
    """The object as written, when intact: what a resumed writer keeps updating."""
    damage: str | None = None
    """Why the file is there but is not a manifest: not JSON, not an object, a field of the wrong
    type (``field 'pid' expected an integer, got 'abc'``)."""
    missing: bool = False
    newer_format: float | None = None
    """The ``format_version`` of a newer voltx: shown, never resumed or stopped by this one."""

    @property
    def damaged(self) -> bool:
        return self.damage is not None

    @property
    def newer(self) -> bool:
        return self.newer_format is not None

    @property
    def problem(self) -> str | None:
        """What to show beside the run, or None when the manifest is intact and of this format."""
        if self.damage is not None:
            return f"run.json: {self.damage}"
        if self.missing:
            return MISSING_MANIFEST
        if self.newer_format is not None:
            return f"written by a newer voltx (format {self.newer_format})"
        return None

    def intact(self, run_dir: Path, action: str) -> Manifest:
        """The record, or the user-facing error saying why voltx will not ``action`` (e.g.
        "resume it") on this manifest: damaged is exit 65 naming the field, missing is exit 66."""
        if self.damage is not None:
            raise DataError(f"{run_dir / 'run.json'}: {self.damage}. voltx will not {action} from a manifest it cannot read: "
                            "repair that field (run.json's fields and their types: voltx/runs/records.py, Manifest), "
                            "or start a new run.")
        if self.missing:
            raise MissingInputError(f"{run_dir} has no readable run.json; it is not a run directory.")
        return self.record


def load_manifest(run_dir: Path) -> RunManifest:
    """run.json of a run dir, checked: what ``voltx status/report``, the console, resume and stop read.

    Never raises for a bad file: a manifest that is not one comes back empty with its ``damage``
    and the run is shown as damaged (the same rule as a damaged line of events.jsonl)."""
    try:
        data = (run_dir / "run.json").read_bytes()
    except OSError:
        return RunManifest(Manifest(), missing=True)
    try:
        raw = json.loads(data)
    except UnicodeDecodeError:
        return RunManifest(Manifest(), damage="not UTF-8 text")
    except json.JSONDecodeError as exc:  # cut off by a full disk, edited by hand
        return RunManifest(Manifest(), damage=f"not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg.removesuffix(' at')})")
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if type(version) in (int, float) and version > FORMAT_VERSION:  # its fields may mean something else
        try:
            record = Manifest.parse(raw)
        except RecordError:
            record = Manifest()
        return RunManifest(record, raw, newer_format=version)
    try:
        return RunManifest(Manifest.parse(raw), raw)
    except RecordError as exc:
        return RunManifest(Manifest(), damage=str(exc))


def resolve_run(spec: str, root: Path, phase: str | None = None) -> Path:
    """RUN may be a path to a run directory, ``latest``, or a prefix of a run id / its hex suffix."""
    as_path = Path(spec).expanduser()
    if is_run_dir(as_path):
        return as_path
    runs = list_run_dirs(root)
    if phase:
        runs = [r for r in runs if r.parent.name == phase]
    if spec == "latest":
        if not runs:
            raise MissingInputError(f"no runs under {root}{f' for phase {phase!r}' if phase else ''}. Start one with `voltx run <phase>`.")
        return runs[-1]
    matches = [r for r in runs if r.name.startswith(spec) or r.name.rsplit("-", 1)[-1].startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        if as_path.exists():
            raise MissingInputError(f"{as_path} is not a run directory (it has no run.json).")
        raise MissingInputError(f"no run matches {spec!r} under {root}. List runs with `voltx status`.")
    names = ", ".join(f"{m.parent.name}/{m.name}" for m in matches[:8])
    raise UsageError(f"{spec!r} matches {len(matches)} runs ({names}); give more of the id.")
