"""Helpers shared by the read-only commands (status, logs, report)."""

from __future__ import annotations

from pathlib import Path

from voltx.runs.layout import RUNS_DIR_PRECEDENCE, runs_root


def add_runs_dir(parser) -> None:
    parser.add_argument("--runs-dir", metavar="DIR", help=f"run store root ({RUNS_DIR_PRECEDENCE})")


def root_from(args) -> Path:
    """The runs root for a command's --runs-dir (and --config, where it has one)."""
    return runs_root(getattr(args, "runs_dir", None), getattr(args, "config", None))

