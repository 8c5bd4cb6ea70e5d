"""Live sinks: every record the run store writes, handed to each enabled sink on a thread of its own.

The writer (:class:`voltx.runs.store.RunWriter`) offers each line it appends to metrics.jsonl or
events.jsonl to the feed, after checking it as its record type. On the training thread that is one
bounded ``deque.append`` per sink (no lock, no parse, no I/O: well under a microsecond); each sink's
own thread builds the sink (``factory(run_dir)``: a W&B or MLflow start takes seconds), turns the
dicts into the declared record types (:mod:`voltx.runs.records`: :class:`StepRecord`,
:class:`Evaluation`, :class:`Deliverable`, :class:`Alert`, :class:`Checkpoint`, :class:`Resumed`,
:class:`End`, :class:`Event` for the other kinds) and calls ``sink.write(record)``.

A sink can never slow or stop the run: one that falls more than :data:`CAPACITY` records behind
loses the newest ones (one alert says so); one that raises is disabled and its error is one
``alert`` event (rule ``sink``) and one line; the run goes on. When the run ends the writer
closes the feed after its ``end`` event, so sinks see the run's end too, and waits at most
:data:`CLOSE_TIMEOUT` seconds for them to finish.
"""

from __future__ import annotations

import collections
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, Callable

from voltx.errors import PreflightError
from voltx.plugin_specs import SinkSpec, resolve
from voltx.runs.records import Record, parse_event, parse_step

CAPACITY = 65536
"""Records a sink may lag behind before the newest are dropped for it (a few MB of dicts)."""
CLOSE_TIMEOUT = 60.0
"""Seconds the run's end waits for its sinks to drain and close (an MLflow flush, a W&B finish)."""
_POLL = 0.02  # how often an idle sink thread looks for records: the producer side takes no lock

_PARSERS: dict[str, Callable[[Any], Record]] = {"metrics": parse_step, "events": parse_event}

Report = Callable[[str, str], None]
"""``report(sink name, message)``: how a sink's trouble reaches the run (an alert event and a line)."""


def missing_modules(spec: SinkSpec) -> list[str]:
    """The modules ``spec.requires`` that are not installed here (found without importing them)."""
    missing = []
    for module in spec.requires:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def check_sinks(plugins: Any, names: list[str], runs_root: Path) -> list[SinkSpec]:
    """The specs of the sinks ``names``, or an error before the run starts: an unknown name is a
    UsageError with a "did you mean" (:meth:`voltx.plugins.PluginSet.get`), a sink whose package
    is not installed a PreflightError with the ``pip install`` line, and a sink's own ``check``
    (a read-only store) raises what it finds. A run never starts with a sink silently dropped."""
    specs = [plugins.get("sinks", name) for name in names]
    for spec in specs:
        missing = missing_modules(spec)
        if missing:
            install = f'pip install "voltx[{spec.extra}]"' if spec.extra else f"pip install {' '.join(missing)}"
            raise PreflightError(f"sink {spec.name!r} needs {', '.join(missing)}, which is not installed: {install}, "
                                 f"or remove {spec.name!r} from [run].sinks / --sink.")
        if spec.check is not None:
            resolve(spec.check)(runs_root)
    return specs


class _Lane:
    """One sink: its queue, its thread, its state. ``offer`` is the only call on the training thread."""

    def __init__(self, spec: SinkSpec, run_dir: Path, report: Report):
        self.name = spec.name
        self._spec, self._run_dir, self._report = spec, run_dir, report
        self._queue: collections.deque = collections.deque()
        self.dropped = 0
        self.failed: str | None = None
        self.busy = True  # building the sink or writing a record
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"voltx-sink-{spec.name}", daemon=True)
        self._thread.start()

    def offer(self, file: str, record: dict) -> None:
        if len(self._queue) < CAPACITY:
            self._queue.append((file, record))
        elif self.failed is None:
            self.dropped += 1
            if self.dropped == 1:  # on the training thread, once: the alert itself is just another record
                self._report(self.name, f"sink {self.name!r} is more than {CAPACITY} records behind: "
                                        "newer records are dropped for it until it catches up")

    @property
    def idle(self) -> bool:
        """Started, and everything offered so far written (or the sink is disabled)."""
        return self.failed is not None or not (self.busy or self._queue)

    def request_close(self) -> None:
        """The thread drains what is queued, closes the sink and stops."""
        self._closing = True

    def close(self, deadline: float) -> bool:
        """Close (:meth:`request_close`) and wait; False if the thread is still busy at ``deadline``."""
        self.request_close()
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _fail(self, doing: str, exc: BaseException) -> None:
        self.failed = f"{type(exc).__name__}: {exc}"
        self._queue.clear()
        self._report(self.name, f"sink {self.name!r} failed {doing} ({self.failed}); it is disabled for the rest of this run, "
                                "the run goes on")

    def _run(self) -> None:
        try:
            sink = resolve(self._spec.factory)(self._run_dir)
        except Exception as exc:  # noqa: BLE001 - a sink's failure is the sink's, never the run's
            self._fail("to start", exc)
            return
        queue = self._queue
        while True:
            if not queue:  # this thread is the only consumer: a record seen here is still there below
                if self._closing:
                    break
                self.busy = False
                time.sleep(_POLL)
                continue
            self.busy = True
            file, raw = queue.popleft()
            try:
                record = _PARSERS[file](raw)
                sink.write(record)
            except Exception as exc:  # noqa: BLE001
                self._fail(f"on a {file}.jsonl record", exc)
                break
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001
            if self.failed is None:
                self._fail("to close", exc)


class SinkFeed:
    """The run's enabled sinks, fed every record the writer appends (:meth:`offer`)."""

    def __init__(self, specs: list[SinkSpec], run_dir: Path, report: Report):
        self._lanes = [_Lane(spec, Path(run_dir), report) for spec in specs]
        self._report = report

    def offer(self, file: str, record: dict) -> None:
        """Hand one checked line of ``file`` ("metrics" or "events") to every live sink."""
        for lane in self._lanes:
            if lane.failed is None:
                lane.offer(file, record)

    @property
    def failed(self) -> dict[str, str]:
        """Sinks disabled by an error, with the error."""
        return {lane.name: lane.failed for lane in self._lanes if lane.failed is not None}

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every live sink has started and written all it was given (benchmarks, tests)."""
        deadline = time.monotonic() + timeout
        while not all(lane.idle for lane in self._lanes):
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL / 2)
        return True

    def close(self, timeout: float | None = None) -> None:
        """Let every sink drain and close, together, for at most ``timeout`` (:data:`CLOSE_TIMEOUT`) seconds."""
        timeout = CLOSE_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        for lane in self._lanes:  # all at once: they drain and close together
            lane.request_close()
        for lane in self._lanes:
            if not lane.close(deadline):
                self._report(lane.name, f"sink {lane.name!r} did not finish within {timeout:g} s of the run's end; "
                                        "its last records may be missing there (the run store has them all)")
            elif lane.dropped:
                self._report(lane.name, f"sink {lane.name!r} dropped {lane.dropped} records it could not keep up with "
                                        "(the run store has every record: `voltx export RUN --to wandb|tensorboard|mlflow` replays it)")
