"""Helpers shared by the read-only commands (status, logs, report)."""

from __future__ import annotations

from pathlib import Path

from voltx.runs.layout import runs_root


RUNS_DIR_PRECEDENCE = ("default: $VOLTX_RUNS_DIR, else [paths].runs_dir of the config in use (--config, else "
                       "./training_config.toml, else the shipped one), else ./runs")
"""How every command picks the runs root when --runs-dir is not given (voltx.runs.layout.runs_root)."""


def add_runs_dir(parser) -> None:
    parser.add_argument("--runs-dir", metavar="DIR", help=f"run store root ({RUNS_DIR_PRECEDENCE})")


def root_from(args) -> Path:
    """The runs root for a command's --runs-dir (and --config, where it has one)."""
    return runs_root(getattr(args, "runs_dir", None), getattr(args, "config", None))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
