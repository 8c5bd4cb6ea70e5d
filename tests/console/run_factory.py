"""Run stores for console tests and benchmarks, written the way ``voltx.runs.store`` writes them.

Plain functions (no pytest): ``make_run`` builds one run directory with a manifest,
config, metrics (several loss terms, lr, throughput, RAR keys), events (start,
evaluations, deliverable verdicts, alerts, checkpoints, RAR telemetry, end), system
samples, stdout.log and committed checkpoints. Times and hosts are fixed so snapshot
tests see the same screen every run. ``make_big_run`` writes a million-step metrics
file quickly for ``benchmarks/bench_console.py``.

Record shapes follow docs/console.md (the RAR telemetry contract lives there).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from voltx.runs.jsonl import dumps
from voltx.runs.layout import FORMAT_VERSION, RunPaths
from voltx.runs.lock import RunLock

BASE_TIME = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: every deterministic run starts here
HOST = "gpu-box-1"
END = {  # status -> (exit code, end message)
    "finished": (0, "2/3 deliverables passed"),
    "failed": (65, "bad data: train.jsonl line 12: field 'text' is missing"),
    "preempted": (75, "stopped by SIGTERM at step {step}; resume with `voltx run {phase} --resume auto`"),
    "diverged": (80, "loss became non-finite by step {step}"),
    "interrupted": (130, "interrupted twice"),
}
STATUSES = (*END, "stale", "running")


def _stamp(t: float) -> str:
    import time

    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(t))


def _write_jsonl(path: Path, records) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(dumps(rec) + "\n")


def metric_record(step: int, total: int, t: float, attempt: int = 1) -> dict:
    """One metrics.jsonl line as voltx.train.loop logs it, plus the RAR keys of docs/console.md."""
    frac = step / max(1, total)
    losses = {
        "loss": round(2.0 * (1.0 - 0.8 * frac) + 0.05 * ((step * 7) % 5) / 5, 6),
        "loss_contrastive": round(1.2 * (1.0 - 0.7 * frac), 6),
        "loss_role": round(0.8 * (1.0 - 0.5 * frac), 6),
    }
    return {
        "step": step, "stage": "encoder", "stage_step": step, "total_steps": total, "epoch": 1 + step * 2 // max(1, total + 1),
        "batch": step, "losses": losses, "lr": round(1e-3 * min(1.0, step / 10) * (1.0 - 0.9 * frac), 9),
        "samples_per_sec": 512.0 + (step % 7), "steps_per_sec": 16.0 + (step % 3) * 0.25,
        "rar/iterations_mean": round(8.0 - 4.0 * frac, 4), "rar/converged_share": round(0.5 + 0.45 * frac, 4),
        "time": round(t, 3), "attempt": attempt,
    }


def rar_event(step: int, t: float, frac: float) -> dict:
    """One ``kind="rar"`` event: per-query iteration counts, per-slot converged share, per-slot certainty."""
    iterations = [max(1, min(12, int(3 + (i * 5) % 9 - 4 * frac))) for i in range(64)]
    slots = [round(min(1.0, 0.3 + 0.04 * s + 0.4 * frac), 4) for s in range(16)]
    gamma = [round(min(1.0, 0.2 + 0.05 * s * (0.5 + frac)), 4) for s in range(16)]
    return {"time": round(t, 3), "kind": "rar", "step": step, "iterations": iterations, "max_iterations": 12,
            "slot_converged": slots, "gamma": gamma}


def system_record(t: float, pid: int | None = 4242) -> dict:
    """One system.jsonl sample in the telemetry schema (voltx.telemetry)."""
    gib = 1024**3
    return {
        "time": round(t, 3), "host": HOST, "cpu_percent": 37.5, "ram_used": 12 * gib, "ram_total": 64 * gib,
        "disk_path": "runs", "disk_free": 200 * gib, "disk_total": 500 * gib,
        "proc": {"pid": pid, "rss": 3 * gib, "cpu_percent": 99.0} if pid else None,
        "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "util": 93, "mem_used": 41 * gib, "mem_total": 80 * gib,
                  "temp": 64, "power_w": 512.0, "power_limit_w": 700.0, "processes": [{"pid": pid or 4242, "mem_used": 40 * gib}]}],
        "gpu_error": None,
    }


def _unique_dir(root: Path, phase: str, created_at: float, status: str, run_id: str | None) -> Path:
    if run_id:
        return root / phase / run_id
    for n in range(1000):
        suffix = hashlib.sha1(f"{phase}{created_at}{status}{n}".encode()).hexdigest()[:6]
        path = root / phase / f"{_stamp(created_at)}-{suffix}"
        if not path.exists():
            return path
    raise RuntimeError("no free run id")


def _manifest(run_id: str, phase: str, status: str, t0: float, ended_at: float, steps: int, total: int, pid: int,
              format_version: int | None) -> dict:
    live = status in ("running", "stale")
    manifest = {
        "format_version": format_version or FORMAT_VERSION, "id": run_id, "phase": phase, "preset": "quick",
        "status": "running" if live else status, "created_at": t0, "code_version": "0.1.0+abc1234", "python": "3.11.7",
        "argv": ["run", phase, "--preset", "quick"],
        "attempts": [{"pid": pid, "host": HOST, "started_at": t0, "resumed_from_step": None,
                      **({} if live else {"ended_at": ended_at, "exit_code": END[status][0], "status": status})}],
        "pid": pid, "host": HOST, "started_at": t0, "device": "cuda:0", "total_steps": total, "stage": "encoder",
        "ended_at": None if live else ended_at, "exit_code": None if live else END[status][0],
    }
    if not live:
        manifest["message"] = END[status][1].format(step=steps, phase=phase)
    return manifest


def _end_events(status: str, ended_at: float, steps: int, deliverables: bool, message: str | None) -> list[dict]:
    """Verdicts of a finished run (one beside its baseline and ablation, two as runs from before
    baselines recorded them), then how the run ended (nothing for a live one)."""
    events = []
    if deliverables and status == "finished":
        for verdict in ({"metric": "encoder/accuracy", "op": ">=", "threshold": 0.85, "value": 0.9, "passed": True, "description": "role accuracy"},
                        {"metric": "encoder/recall", "op": ">=", "threshold": 0.75, "value": 0.7, "passed": False, "description": "slot recall",
                         "baseline": 0.72, "baseline_metric": "encoder/recall_majority", "baselines": {"encoder/recall_majority": 0.72},
                         "ablations": {"encoder/recall_untrained": 0.1}, "margin": 0.0,
                         "reason": "0.7 does not meet the threshold >= 0.75"},
                        {"metric": "encoder/ppl", "op": "<=", "threshold": 20.0, "value": None, "passed": False, "description": "not evaluated"}):
            events.append({"time": ended_at - 0.1, "kind": "deliverable", "step": steps, **verdict})
    if status == "preempted":
        events.append({"time": ended_at - 0.2, "kind": "preempted", "signal": "SIGTERM", "step": steps, "stage": "encoder"})
    if status == "diverged":
        events.append({"time": ended_at - 0.2, "kind": "diverged", "step": steps, "stage": "encoder", "losses": {"loss": None}})
    if status not in ("running", "stale"):
        events.append({"time": ended_at, "kind": "end", "status": status, "exit_code": END[status][0], "message": message})
    return events


def make_run(
    root: Path,
    phase: str = "f1",
    *,
    status: str = "finished",
    steps: int = 50,
    run_id: str | None = None,
    created_at: float | None = None,
    alerts: int = 0,
    system: bool = True,
    deliverables: bool = True,
    rar: bool = True,
    corrupt_tail: bool = False,
    format_version: int | None = None,
    live_pid: int | None = None,
) -> Path:
    """Create one run directory under ``root/<phase>/`` and return it.

    ``status`` is one of STATUSES. ``stale`` writes a manifest that says running with
    nobody holding the lock; ``running`` does the same, so the caller must hold the lock
    (``hold_lock(run_dir)``) or name ``live_pid`` of a process that holds it.
    ``corrupt_tail`` appends a corrupt line and a half-written last line to metrics and
    events. ``system=False`` and ``rar=False`` leave that telemetry out (a run with none).
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
    t0 = BASE_TIME if created_at is None else created_at
    run_dir = _unique_dir(Path(root), phase, t0, status, run_id)
    run_dir.mkdir(parents=True)
    paths = RunPaths(run_dir)
    total = steps if status == "finished" else steps * 2
    live = status in ("running", "stale")
    pid = live_pid or 4242
    step_time = 0.0625  # 16 steps/s, like the records say
    ended_at = round(t0 + 1 + steps * step_time, 3)
    manifest = _manifest(run_dir.name, phase, status, t0, ended_at, steps, total, pid, format_version)
    paths.manifest.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    paths.config.write_text(f'[run]\nseed = 0\nlog_every = 1\n\n[{phase}]\nlr = 0.001\nbatch_size = 32\nepochs = 2\n', encoding="utf-8")
    paths.overrides.write_text("run.log_every=1\n", encoding="utf-8")
    paths.lock.write_text(json.dumps({"pid": pid, "host": HOST}), encoding="utf-8")

    metrics = [metric_record(s, total, t0 + 1 + s * step_time) for s in range(1, steps + 1)]
    _write_jsonl(paths.metrics, metrics)
    events = [{"time": t0 + 0.5, "kind": "start", "phase": phase, "preset": "quick", "overrides": ["run.log_every=1"]},
              {"time": t0 + 0.6, "kind": "stage_start", "stage": "encoder", "step": 0, "total_steps": total, "parameters": 1234567}]
    checkpoint_steps = sorted({max(1, steps // 2), steps}) if steps else []
    for n, ck in enumerate(checkpoint_steps, 1):
        t = t0 + 1 + ck * step_time
        if deliverables:
            events.append({"time": t, "kind": "evaluation", "stage": "encoder", "step": ck, "epoch": n,
                           "metrics": {"encoder/accuracy": round(0.6 + 0.15 * n, 4), "encoder/recall": round(0.5 + 0.1 * n, 4)}})
        if rar:
            events.append(rar_event(ck, t, ck / max(1, total)))
        events.append({"time": t + 0.1, "kind": "checkpoint", "step": ck, "stage": "encoder",
                       "path": str(paths.checkpoints / f"step-{ck}"), "seconds": 0.25})
        ck_dir = paths.checkpoints / f"step-{ck}"
        ck_dir.mkdir(parents=True)
        (ck_dir / "state.json").write_text(json.dumps({"stage": "encoder", "global_step": ck}), encoding="utf-8")
        (ck_dir / "COMMITTED").write_text("", encoding="utf-8")
    if checkpoint_steps:  # a half-written checkpoint: the console must not list it
        (paths.checkpoints / ".tmp-step-999999-1").mkdir()
    for a in range(alerts):
        step = max(1, steps * (a + 1) // (alerts + 1))
        events.append({"time": t0 + 1 + step * step_time, "kind": "alert", "rule": "loss_spike" if a % 2 == 0 else "throughput_drop",
                       "severity": "warning" if a % 2 == 0 else "error", "step": step, "message": f"alert {a + 1}: loss jumped 3.2x at step {step}"})
    events += _end_events(status, ended_at, steps, deliverables, manifest.get("message"))
    _write_jsonl(paths.events, events)
    if system:
        _write_jsonl(paths.system, [system_record(t0 + 1 + i, pid) for i in range(max(1, int(steps * step_time)))])
    with open(paths.stdout, "w", encoding="utf-8") as fh:
        fh.write(f"voltx: run {run_dir} (new)\n")
        for m in metrics[-20:]:
            fh.write(f"[encoder] step {m['step']}/{total} loss {m['losses']['loss']:.4f} lr {m['lr']:.2e}\n")
        if not live:
            fh.write(f"voltx: run {status}: {manifest['message']}\n")
    if corrupt_tail:
        for p in (paths.metrics, paths.events):
            with open(p, "a", encoding="utf-8") as fh:
                fh.write('{"step": 3, "losses": {"loss": 1.0\n')  # a corrupt complete line
                fh.write('{"step": 99999, "losses": {"lo')  # a half line: a writer mid-write
    return run_dir


@contextlib.contextmanager
def hold_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's writer flock (as a live ``voltx run`` does) for the ``with`` body."""
    lock = RunLock(RunPaths(Path(run_dir)).lock)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def append_steps(run_dir: Path, first: int, count: int, total: int, t0: float = BASE_TIME) -> None:
    """Append ``count`` more metrics lines (a live run progressing)."""
    _write_jsonl(RunPaths(run_dir).metrics, [metric_record(s, total, t0 + 1 + s * 0.0625) for s in range(first, first + count)])


def make_big_run(root: Path, steps: int = 1_000_000, phase: str = "f1") -> Path:
    """A finished run with ``steps`` metrics lines, written with one format string (seconds, not minutes)."""
    run_dir = make_run(root, phase, steps=0, status="finished", run_id=f"{_stamp(BASE_TIME)}-b1g000")
    paths = RunPaths(run_dir)
    manifest = json.loads(paths.manifest.read_text())
    manifest["total_steps"] = steps
    paths.manifest.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    line = ('{"step":%d,"stage":"encoder","stage_step":%d,"total_steps":%d,"epoch":1,"batch":%d,'
            '"losses":{"loss":%.6f,"loss_contrastive":%.6f,"loss_role":%.6f},"lr":%.3e,'
            '"samples_per_sec":%.1f,"steps_per_sec":%.2f,"rar/iterations_mean":%.3f,"time":%.3f,"attempt":1}\n')
    chunk = 50_000
    with open(paths.metrics, "w", encoding="utf-8") as fh:
        for start in range(1, steps + 1, chunk):
            parts = []
            for s in range(start, min(steps, start + chunk - 1) + 1):
                f = s / steps
                parts.append(line % (s, s, steps, s, 2.0 - 1.5 * f + (s % 13) * 0.003, 1.2 - 0.8 * f, 0.8 - 0.4 * f,
                                     1e-3 * (1 - 0.9 * f), 512.0 + s % 7, 16.0, 8.0 - 4 * f, BASE_TIME + s * 0.0625))
            fh.write("".join(parts))
    os.utime(paths.metrics)
    return run_dir
