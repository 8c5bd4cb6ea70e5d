"""The ``tensorboard`` sink: TensorBoard event files through tensorboardX (no TensorFlow, no torch).

Scalars per loss term (``loss/<term>``), ``lr`` and throughput at each logged step, evaluations
as ``eval/<stage>/<metric>``, verdicts and alerts as text, the run's config as hparams (with
the verdicts' values) when it ends. ``tensorboard --logdir <run>/tensorboard`` shows it live.

A resumed run writes a new event file in the same directory that starts with a purge at the
resumed step (tensorboardX's ``purge_step``): TensorBoard drops the steps the previous attempt
logged past its checkpoint, as the run store's readers do, so no step is shown twice.
"""

from __future__ import annotations

from pathlib import Path

from tensorboardX import SummaryWriter

from voltx.runs.records import Alert, Deliverable, End, Record, Resumed
from voltx_plugins.tracker_common import RunFacts, scalars, verdict_text

_HPARAM_TYPES = (bool, str, int, float)


class TensorBoardSink:
    """Writes ``<run>/tensorboard`` (or ``output``: ``voltx export --to tensorboard``, a replay, which
    keeps nothing in the run directory: this sink keeps nothing there anyway)."""

    def __init__(self, run_dir: Path, output: Path | None = None, replay: bool = False):
        self._facts = RunFacts.read(run_dir)
        self._logdir = Path(output) if output is not None else Path(run_dir) / "tensorboard"
        self._writer: SummaryWriter | None = None
        self._step = 0
        self._verdicts: dict[str, float] = {}

    def _open(self, purge_step: int | None) -> SummaryWriter:
        self._writer = SummaryWriter(logdir=str(self._logdir), purge_step=purge_step, flush_secs=5)
        return self._writer

    def write(self, record: Record) -> None:
        if self._writer is None:  # a resumed attempt's first record is its `resumed` event
            resumed_at = record.from_step if isinstance(record, Resumed) else None
            self._open(resumed_at + 1 if resumed_at is not None else None)
        writer = self._writer
        step = record.step if record.step is not None else self._step
        self._step = step
        walltime = getattr(record, "time", None)
        for tag, value in scalars(record).items():
            writer.add_scalar(tag, value, global_step=step, walltime=walltime)
        if isinstance(record, Deliverable):
            writer.add_text(f"deliverables/{record.metric}", verdict_text(record), global_step=step, walltime=walltime)
            if record.value is not None:
                self._verdicts[f"deliverable/{record.metric}"] = record.value
        elif isinstance(record, Alert):
            writer.add_text(f"alerts/{record.rule}", record.message, global_step=step, walltime=walltime)
        elif isinstance(record, End):
            writer.add_text("run/end", f"{record.status} (exit code {record.exit_code})" + (f": {record.message}" if record.message else ""),
                            global_step=step, walltime=walltime)
            self._hparams()

    def _hparams(self) -> None:
        """The config beside the verdicts' values: TensorBoard's HPARAMS tab compares runs by them."""
        hparams = {k: v for k, v in self._facts.config.items() if isinstance(v, _HPARAM_TYPES)}
        if hparams:
            self._writer.add_hparams(hparams, dict(self._verdicts), name="hparams", global_step=self._step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
