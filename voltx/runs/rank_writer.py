"""The run writer of a distributed run's ranks other than 0: it writes nothing to the run.

Rank 0 owns the run directory (run.json, metrics, events, stdout, telemetry, artifacts,
checkpoints, the lock). The other ranks run the same phase code, which logs events, updates
the manifest and saves artifacts through ``ctx.run``; here those calls do nothing, and
artifacts go to a private scratch directory (seeded with the run's artifacts, so a resumed
stage that reads an earlier stage's file finds it) that is removed when the process ends.
Checkpoints are read from the run's own directory (rank 0 writes them, with every rank's
state gathered into them).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voltx.runs.layout import RunPaths


@dataclass(frozen=True)
class RankPaths(RunPaths):
    """The run's paths, but artifacts in this rank's scratch directory."""

    scratch: Path = Path()

    @property
    def artifacts(self) -> Path:
        return self.scratch


class QuietWriter:
    """What phase code and the loop call on ``ctx.run``, writing nothing to the run directory."""

    def __init__(self, run_dir: Path, rank: int, manifest: dict[str, Any] | None = None):
        scratch = Path(tempfile.mkdtemp(prefix=f"voltx-rank{rank}-"))
        source = RunPaths(run_dir).artifacts
        if source.is_dir():
            shutil.copytree(source, scratch, dirs_exist_ok=True)
        self.dir = Path(run_dir)
        self.paths = RankPaths(self.dir, scratch=scratch)
        self.manifest = dict(manifest or {})
        self.attempt = 0

    def event(self, kind: str, **fields: Any) -> None:
        pass

    def log_metrics(self, record: dict[str, Any]) -> None:
        pass

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)

    def stdout(self, line: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        shutil.rmtree(self.paths.scratch, ignore_errors=True)


class QuietHub:
    """The metrics fan-out of a rank other than 0: rank 0 logs the means over the ranks."""

    def log(self, record: dict[str, Any]) -> None:
        pass
