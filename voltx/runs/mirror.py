"""An off-machine copy of a run: ``[run].mirror = "<fsspec URL>"``.

The run's folder ``<runs root>/<phase>/<id>`` is mirrored to ``<URL>/<phase>/<id>``. The copy is a
sink (:mod:`voltx.runs.sink_feed`): it works on its own thread, after each ``checkpoint`` record,
which the loop writes once the checkpoint is committed. It copies the checkpoint's files, then
its ``COMMITTED`` marker last (the commit protocol of :mod:`voltx.runs.checkpoints`, so a mirror
never holds a checkpoint without its marker, nor a marker before its files), then removes the
mirrored checkpoints the run has pruned (marker first), then the run's own files (run.json,
config.toml, overrides.txt, metrics.jsonl, events.jsonl). An upload that fails is an alert and is
retried with backoff; the run never waits for it, except at its end (at most the sinks' close
timeout). ``<run>/mirror.json`` says what the mirror holds (``voltx status`` shows the lag).

Before the run starts, :func:`preflight` checks the URL (reachable, writable) and that the
mirror's folder holds this run (``MIRROR.json``: its id and creation time), not another's.
``voltx run PHASE --resume auto`` on a machine without the run pulls the newest unfinished run of
the phase from the mirror (:func:`pull_newest`): its files and its newest committed checkpoint,
so it continues bit for bit.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from voltx.errors import PreflightError
from voltx.plugin_specs import SinkSpec
from voltx.runs.checkpoints import COMMITTED, committed
from voltx.runs.layout import RunPaths, load_manifest
from voltx.runs.records import Checkpoint, End, Record

IDENTITY = "MIRROR.json"
STATE = "mirror.json"
RUN_FILES = ("run.json", "config.toml", "overrides.txt", "metrics.jsonl", "events.jsonl")
RETRIES = 6  # attempts per upload: backoff 1, 2, 4, 8, 16 s between them
Report = Callable[[str, str], None]
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
"""The voltx extra that installs each cloud protocol's fsspec implementation (pyproject.toml)."""


def open_mirror(url: str) -> tuple[Any, str]:
    """(file system, root path) of ``url``; a PreflightError when fsspec cannot open it."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except ImportError as exc:  # s3:// without s3fs, gs:// without gcsfs ...
        extra = _EXTRAS.get(url.split("://", 1)[0])
        install = f'pip install "voltx[{extra}]"' if extra else "install the fsspec implementation it names"
        raise PreflightError(f"[run].mirror {url!r} needs a package that is not installed ({exc}): {install}.") from None
    except (ValueError, OSError) as exc:
        raise PreflightError(f"[run].mirror {url!r} is not a URL fsspec can open ({exc}).") from None
    return fs, root.rstrip("/")


def remote_dir(root: str, run_dir: Path) -> str:
    return f"{root}/{run_dir.parent.name}/{run_dir.name}"


def _identity(run_dir: Path) -> dict[str, Any]:
    manifest = load_manifest(run_dir).record
    return {"run_id": manifest.id or run_dir.name, "created_at": manifest.created_at}


def preflight(url: str, run_dir: Path) -> None:
    """Refuse, before training, a mirror that cannot be written or holds another run."""
    fs, root = open_mirror(url)
    target, mine = remote_dir(root, run_dir), _identity(run_dir)
    try:
        fs.makedirs(target, exist_ok=True)
        probe = f"{target}/.probe-{os.getpid()}"
        fs.pipe_file(probe, b"voltx")
        fs.rm_file(probe)
        held = json.loads(fs.cat_file(f"{target}/{IDENTITY}")) if fs.exists(f"{target}/{IDENTITY}") else None
        if held is None:  # a new mirror folder: it is this run's from now on
            fs.pipe_file(f"{target}/{IDENTITY}", json.dumps(mine).encode())
            held = mine
    except (OSError, ValueError) as exc:
        raise PreflightError(f"[run].mirror {url!r} cannot be written ({type(exc).__name__}: {exc}): check the URL and its "
                             "credentials, or set run.mirror=\"\" to run without a mirror.") from None
    if held != mine:
        raise PreflightError(f"[run].mirror {url!r} holds another run at {target} (run {held.get('run_id')!r} created at "
                             f"{held.get('created_at')}, this is {mine['run_id']!r} created at {mine['created_at']}); "
                             "refusing to mix their checkpoints: choose another mirror URL.")


class MirrorSink:
    """Copies committed checkpoints and the run's files to the mirror (a sink: on its own thread)."""

    def __init__(self, url: str, run_dir: Path, report: Report, backoff: float = 1.0):
        self._fs, root = open_mirror(url)
        self._url, self._dir, self._report, self._backoff = url, Path(run_dir), report, backoff
        self._remote = remote_dir(root, self._dir)
        self._state: dict[str, Any] = {"url": url, "remote": self._remote, "step": None, "time": None, "error": None}

    def write(self, record: Record) -> None:
        if isinstance(record, Checkpoint):
            self._with_retries(f"checkpoint step-{record.step}", lambda: self._checkpoint(record))
        elif isinstance(record, End):
            self._with_retries("the run's files", lambda: self._run_files(end=record))

    def _checkpoint(self, record: Checkpoint) -> None:
        local = Path(record.path) if record.path else RunPaths(self._dir).checkpoints / f"step-{record.step}"
        if not (local / COMMITTED).is_file():
            return  # pruned (or set aside) before this thread got to it: a newer checkpoint follows
        remote = f"{self._remote}/checkpoints/{local.name}"
        self._fs.makedirs(remote, exist_ok=True)
        try:
            for file in sorted(local.iterdir()):
                if file.name != COMMITTED:
                    self._fs.put_file(str(file), f"{remote}/{file.name}")
            self._fs.put_file(str(local / COMMITTED), f"{remote}/{COMMITTED}")  # the marker last, as on disk
        except FileNotFoundError:
            if not (local / COMMITTED).is_file():  # pruned here while it was copied (the mirror lags two checkpoints)
                self._fs.rm(remote, recursive=True)
                return
            raise
        kept = {p.name for p in committed(RunPaths(self._dir).checkpoints)} | {local.name}
        for path in self._fs.ls(f"{self._remote}/checkpoints", detail=False):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith("step-") and name not in kept:  # pruned here: uncommit there first, then remove
                if self._fs.exists(f"{path}/{COMMITTED}"):
                    self._fs.rm(f"{path}/{COMMITTED}")
                self._fs.rm(path, recursive=True)
        self._run_files()
        self._state.update(step=record.step, time=round(time.time(), 3))

    def _run_files(self, end: End | None = None) -> None:
        for name in RUN_FILES:
            if (self._dir / name).is_file():
                self._fs.put_file(str(self._dir / name), f"{self._remote}/{name}")
        if end is not None:  # the writer records the end in run.json after its sinks close: say it there already
            manifest = json.loads((self._dir / "run.json").read_text(encoding="utf-8"))
            manifest.update(status=end.status, exit_code=end.exit_code, message=end.message, ended_at=end.time)
            self._fs.pipe_file(f"{self._remote}/run.json", json.dumps(manifest, indent=1).encode())

    def _with_retries(self, what: str, job: Callable[[], None]) -> None:
        delay = self._backoff
        for attempt in range(1, RETRIES + 1):
            try:
                job()
                self._state["error"] = None
                break
            except Exception as exc:  # noqa: BLE001 - an upload failure is an alert, never the run's end
                self._state["error"] = f"{type(exc).__name__}: {exc}"
                if attempt == 1 or attempt == RETRIES:
                    again = f"retrying {RETRIES - 1} times with backoff" if attempt == 1 else "giving up on it; the next checkpoint tries again"
                    self._report("mirror", f"mirror {self._url}: copying {what} failed ({self._state['error']}); {again}")
                if attempt < RETRIES:
                    time.sleep(delay)
                    delay *= 2
        _write_state(self._dir, self._state)

    def close(self) -> None:
        _write_state(self._dir, self._state)


def mirror_spec(url: str, report: Report) -> SinkSpec:
    """The mirror as one more sink of the run (its own thread and queue)."""
    return SinkSpec("mirror", f"copies committed checkpoints to {url}", lambda run_dir: MirrorSink(url, run_dir, report))


def _write_state(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / f".{STATE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(tmp, run_dir / STATE)


def mirror_lag(run_dir: Path) -> str | None:
    """What ``voltx status`` says about a mirrored run: the newest checkpoint there vs here."""
    try:
        state = json.loads((Path(run_dir) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    local = committed(RunPaths(Path(run_dir)).checkpoints)
    newest = int(local[-1].name[5:]) if local else None
    there = state.get("step")
    if state.get("error"):
        return f"mirror failing ({state['error']}); it holds step {there}" if there is not None else f"mirror failing ({state['error']})"
    if there is None:
        return "mirror: no checkpoint copied yet"
    if newest is None or there >= newest:
        return f"mirror up to date (step {there})"
    return f"mirror {newest - there} steps behind (step {there}, newest here {newest})"


def pull_newest(url: str, root: Path, phase: str) -> Path | None:
    """Copy the newest unfinished run of ``phase`` from the mirror into ``root`` (its files and its
    newest committed checkpoint); its local directory, or None when the mirror has none."""
    fs, base = open_mirror(url)
    folder = f"{base}/{phase}"
    try:
        names = sorted((p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)), reverse=True)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PreflightError(f"[run].mirror {url!r} cannot be read ({exc}); resume needs it to pull the run.") from None
    for name in names:
        remote = f"{folder}/{name}"
        try:
            manifest = json.loads(fs.cat_file(f"{remote}/run.json"))
        except (OSError, ValueError):
            continue
        local = Path(root) / phase / name
        if manifest.get("status") == "finished" or local.exists():
            continue  # nothing to continue, or here already (resume_target has judged it)
        steps = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(f"{remote}/checkpoints", detail=False)] if fs.exists(f"{remote}/checkpoints") else []
        marked = sorted((int(s[5:]) for s in steps if s.startswith("step-") and fs.exists(f"{remote}/checkpoints/{s}/{COMMITTED}")), reverse=True)
        (local / "checkpoints").mkdir(parents=True, exist_ok=True)
        for file in RUN_FILES:
            if fs.exists(f"{remote}/{file}"):
                fs.get_file(f"{remote}/{file}", str(local / file))
        if marked:
            tmp = local / "checkpoints" / f".tmp-step-{marked[0]}-pull"
            tmp.mkdir()
            for path in fs.ls(f"{remote}/checkpoints/step-{marked[0]}", detail=False):
                fs.get_file(path, str(tmp / path.rstrip("/").rsplit("/", 1)[-1]))
            tmp.rename(local / "checkpoints" / f"step-{marked[0]}")
        return local
    return None
