"""Helpers shared by the read-only commands (status, logs, report)."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from voltx.runs.layout import runs_root


def add_runs_dir(parser) -> None:
    parser.add_argument("--runs-dir", metavar="DIR", help="run store root (default: [paths].runs_dir, VOLTX_RUNS_DIR, ./runs)")


def root_from(args) -> Path:
    configured = None
    cfg = Path("training_config.toml")
    if cfg.exists():
        try:
            paths = tomllib.loads(cfg.read_text(encoding="utf-8")).get("paths", {})
            configured = paths.get("runs_dir") if isinstance(paths, dict) else None
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            configured = None  # `voltx config validate` reports it; reading runs must still work
        if not isinstance(configured, str):
            configured = None
    return runs_root(getattr(args, "runs_dir", None), configured)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
