"""A distributed run's ranks other than 0: the same phase, trained beside rank 0, writing nothing.

Rank 0 runs :func:`voltx.train.runner.execute` (plans the run, owns its directory) and sends
the others one set-up packet (run directory, saved config, the checkpoint it resumes from);
each builds the same :class:`~voltx.train.context.RunContext` around a
:class:`~voltx.runs.rank_writer.QuietWriter` and runs the phase. Its output is only an error
line (rank 0 prints the run's); its exit code follows the outcome as rank 0's does.
"""

from __future__ import annotations

import sys
import tomllib
import traceback
from pathlib import Path

from voltx.config import build_config, phase_tables
from voltx.errors import EXIT_INTERNAL, EXIT_OK, EXIT_PREEMPTED, VoltxError
from voltx.plugin_specs import resolve
from voltx.runs.checkpoints import Checkpoint
from voltx.runs.rank_writer import QuietHub, QuietWriter
from voltx.train.context import RunContext
from voltx.train.device import configure_determinism, pick_device, seed_everything
from voltx.train.distributed import Job, place
from voltx.train.progress import Reporter
from voltx.train.signals import StopFlag


class _Silent:
    """Where a rank other than 0 prints its progress: nowhere (rank 0 prints the run's)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def follow(job: Job, plugins, *, restore_signals: bool = False) -> int:
    """Train beside rank 0 until the run ends; return this process's exit code."""
    stop = StopFlag().install()
    setup = job.broadcast_json(None)
    if "run_dir" not in setup:  # rank 0 could not start the run: it says why
        stop.settle(setup["exit_code"])
        job.close()
        return int(setup["exit_code"])
    spec = plugins.get("phases", setup["phase"])
    run_dir = Path(setup["run_dir"])
    cfg = build_config(tomllib.loads(setup["config"]), phase_tables(plugins), source=str(run_dir / "config.toml"), text=setup["config"])
    writer = QuietWriter(run_dir, job.rank, {"preset": setup["preset"]})
    checkpoint = _checkpoint(Path(setup["checkpoint"])) if setup["checkpoint"] else None
    code = EXIT_INTERNAL
    try:
        device = place(pick_device(cfg.hardware), job)
        configure_determinism(cfg.hardware, device)
        seed_everything(cfg.run.seed)
        ctx = RunContext(config=cfg, phase=spec, run=writer, device=device, hub=QuietHub(), reporter=Reporter(stream=_Silent(), mode="plain"),
                         stop=stop, resume=checkpoint, job=job)
        try:
            resolve(spec.runner)(ctx)
        except Exception as exc:  # a collective outside the job's own calls (FSDP2's) failed: RankLost too
            raise job.as_lost(exc) from None
        code = EXIT_OK
    except VoltxError as exc:
        code = exc.exit_code
        if code != EXIT_PREEMPTED:  # a stop is rank 0's to report; anything else may be this rank's alone
            print(f"voltx: rank {job.rank}: error: {exc}", file=sys.stderr, flush=True)
    except Exception:
        print(f"voltx: rank {job.rank}: internal error\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    finally:
        stop.settle(code)
        writer.close()
        job.close()
        if restore_signals:
            stop.uninstall()
    return code


def _checkpoint(path: Path) -> Checkpoint:
    import json

    state = json.loads((path / "state.json").read_text(encoding="utf-8"))
    return Checkpoint(path, int(state["step"]), state)
