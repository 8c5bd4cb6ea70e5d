"""The runs screen's data: every run under the roots, re-read only where a file changed.

``RunIndex.scan()`` lists the run directories of every root, and for each run re-reads
run.json and the tail of metrics.jsonl (:func:`voltx.runs.store.summarize`, the summary
``voltx status`` prints) only when their size or mtime moved (a poll of a
hundred idle runs is a few hundred ``stat`` calls). A run whose manifest says running is
checked for a live writer on every scan: the kernel drops a dead writer's flock without
touching any file. Runs from a newer format_version are listed read-only. No textual here:
the data layer is tested and benchmarked without a terminal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from voltx.runs.layout import RunPaths, list_run_dirs
from voltx.runs.lock import writer_alive
from voltx.runs.store import RunSummary, summarize

def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


@dataclass
class RootState:
    path: Path
    exists: bool
    writable: bool
    message: str | None


def root_state(root: Path) -> RootState:
    """Whether runs can be listed from and launched into ``root`` (a message when not)."""
    if root.is_dir():
        if os.access(root, os.W_OK | os.X_OK):
            return RootState(root, True, True, None)
        return RootState(root, True, False, f"runs root {root} is not writable: launching is disabled (choose another with --runs-dir)")
    if root.exists():
        return RootState(root, False, False, f"runs root {root} is not a directory: launching is disabled (choose another with --runs-dir)")
    parent = root.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        return RootState(root, False, True, f"runs root {root} does not exist yet: the first run creates it")
    return RootState(root, False, False, f"runs root {root} does not exist and {parent} is not writable: launching is disabled")


class RunIndex:
    """Incremental view of every run under ``roots`` (one per ``--runs-dir``)."""

    def __init__(self, roots: list[Path]):
        self.roots = [Path(r) for r in roots]
        self.rows: dict[Path, RunSummary] = {}
        """One summary per run; a changed run gets a new one (they are frozen: screens may keep them)."""
        self._seen: dict[Path, tuple] = {}  # run dir -> (manifest stat, metrics stat)

    def states(self) -> list[RootState]:
        """One per root; only the first takes launches, so only its state talks about them."""
        states = [root_state(r) for r in self.roots]
        for state in states[1:]:
            if not state.exists:
                what = "is not a directory" if state.path.exists() else "does not exist"
                state.message = f"runs root {state.path} {what} (nothing listed from it)"
            elif not state.writable and state.message:
                state.message = None  # listed read-only; launches go to the first root
        return states

    def scan(self) -> bool:
        """Re-read what changed; True when any row changed (so the screen redraws only then)."""
        changed = False
        present: set[Path] = set()
        for root in self.roots:
            try:
                dirs = list_run_dirs(root)
            except OSError:  # unreadable root: its state message says so
                dirs = []
            for run_dir in dirs:
                present.add(run_dir)
                changed |= self._update(run_dir)
        for gone in set(self.rows) - present:
            del self.rows[gone]
            self._seen.pop(gone, None)
            changed = True
        return changed

    def _update(self, run_dir: Path) -> bool:
        paths = RunPaths(run_dir)
        key = (_stat_key(paths.manifest), _stat_key(paths.metrics))
        old = self.rows.get(run_dir)
        if old is not None and self._seen.get(run_dir) == key:
            if old.status not in ("running", "stale"):  # only a manifest saying running has a writer to lose
                return False
            status = "running" if writer_alive(run_dir) else "stale"  # the writer may have died silently
            if status == old.status:
                return False
            self.rows[run_dir] = replace(old, status=status, eta_s=old.eta_s if status == "running" else None)
            return True
        self._seen[run_dir] = key
        self.rows[run_dir] = row = summarize(run_dir)  # a damaged run.json is listed as damaged, with why
        return old != row
