"""The telemetry sidecar: a small process that samples the machine while a run lives.

``python -m voltx.telemetry.sidecar RUN_DIR --pid PID --interval 1.0`` appends one
record per interval to ``RUN_DIR/system.jsonl`` (append-only, one JSON object per line,
flushed per record so readers see it within a second). It is a separate process, not a
thread of the run, so sampling never competes with the training loop's GIL and a run
that hangs in a CUDA call is still observed.

It exits when the watched run process is gone (checked every interval, and by
PR_SET_PDEATHSIG on Linux when the run is its parent), on SIGTERM/SIGINT, and never
because a sample failed: a failed sample is skipped and noted on stderr.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from voltx.runs.jsonl import dumps

LOG_NAME = "telemetry.log"  # the sidecar's stderr, in the run directory


class _Stop(Exception):
    pass


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM us when the parent (the run) dies: a second guard beside polling."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # polling the watched pid still ends us


def run(run_dir: Path, pid: int, interval: float, nvml=None) -> int:
    from voltx.telemetry.sampler import Sampler

    state = {"sleeping": False, "stop": False}

    def on_signal(signum, frame):
        state["stop"] = True
        if state["sleeping"]:  # leave the sleep now; mid-write we finish the line first
            raise _Stop()

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C in the run's terminal reaches us too; the run then checkpoints and exits,
    # and we follow when it is gone, so the samples cover its last steps.
    signal.signal(signal.SIGINT, signal.SIG_IGN if pid == os.getppid() else on_signal)
    sampler = Sampler(run_dir.parent.parent, pid, nvml=nvml)  # disk of the runs root
    out_path = run_dir / "system.jsonl"
    next_at = time.monotonic()
    try:
        with open(out_path, "a+", encoding="utf-8") as out:
            if _ends_mid_line(out_path):
                out.write("\n")  # a killed sidecar left half a line: start ours on a new one
            while not state["stop"] and sampler.watched_alive():
                try:
                    out.write(dumps(sampler.sample()) + "\n")
                    out.flush()
                except OSError:
                    raise  # disk full or run dir gone: nothing more to record
                except Exception:  # a sampling bug must not end the telemetry of a long run
                    print(f"voltx telemetry: sample skipped:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
                next_at += interval
                delay = next_at - time.monotonic()
                if delay < 0:  # fell behind (suspended machine): do not burst to catch up
                    next_at, delay = time.monotonic(), 0.0
                state["sleeping"] = True
                try:
                    if state["stop"]:
                        break
                    time.sleep(delay)
                finally:
                    state["sleeping"] = False
    except _Stop:
        pass
    except OSError as exc:
        print(f"voltx telemetry: stopped: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        sampler.close()
    return 0


def _ends_mid_line(path: Path) -> bool:
    with open(path, "rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def start_sidecar(run_dir: Path, pid: int, interval: float) -> subprocess.Popen | None:
    """Start the sidecar for a run directory; None when it cannot start (the run goes on)."""
    if interval <= 0:
        return None
    cmd = [sys.executable, "-m", "voltx.telemetry.sidecar", str(run_dir), "--pid", str(pid), "--interval", str(interval)]
    try:
        with open(Path(run_dir) / LOG_NAME, "ab") as log:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, close_fds=True)
    except OSError as exc:
        print(f"voltx: telemetry sidecar not started: {exc}", file=sys.stderr)
        return None


def stop_sidecar(proc: subprocess.Popen | None, timeout: float = 3.0) -> None:
    """SIGTERM, wait briefly, then SIGKILL: a stuck NVML call must not hold up the run's exit."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voltx.telemetry.sidecar", description="Append telemetry samples to RUN_DIR/system.jsonl while PID lives.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--pid", type=int, default=os.getppid(), help="process to watch (default: the parent)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be > 0")
    if not args.run_dir.is_dir():
        parser.error(f"{args.run_dir} is not a directory")
    _die_with_parent()
    return run(args.run_dir, args.pid, args.interval)


if __name__ == "__main__":
    sys.exit(main())
