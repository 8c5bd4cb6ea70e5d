"""Linked runs: a run that starts other runs, each its own ``voltx run`` process and run directory.

What ``voltx run curriculum`` does with the F-phases and a plugin's runner does with anything
(``voltx run lvm-sweep`` trains one ``lvm`` run per architecture): plan a child run on the parent's
footing (its runs root, ``[paths]``, ``[hardware]``, ``run.seed`` and the distributed options the
parent was started with: ``voltx run <parent> --nproc-per-node N`` runs the parent once and each
child as N processes, see ``PhaseSpec.starts_runs``), run it with its output
echoed on the parent's and a stop of the parent forwarded to it (the child checkpoints and exits
75), then read the child's verdicts and evaluations through the run store's record types. Each
child is an ordinary run: the console, ``voltx status``, ``--resume`` and the compare view treat
it as any other. A plugin records its children with :func:`record_child` (``linked_run`` events)
and reads them back on resume with :func:`recorded_children`.

Public API (:mod:`voltx.public_api`). No torch.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Mapping

from voltx.runs.jsonl import SkippedLines, read_jsonl
from voltx.runs.plan import RunPlan, plan_run
from voltx.runs.records import Deliverable, Evaluation, LinkedRun, parse_event


def parent_overrides(ctx: Any) -> dict[str, object]:
    """The parent's resolved ``[paths]``/``[hardware]`` and ``run.seed``, so every child runs on the same footing."""
    out: dict[str, object] = {f"paths.{k}": v for k, v in vars(ctx.config.paths).items()}
    out.update({f"hardware.{k}": v for k, v in vars(ctx.config.hardware).items()})
    out["run.seed"] = ctx.config.run.seed
    return out


def runs_root(ctx: Any) -> Path:
    """The runs root the parent run lives in (``<root>/<phase>/<id>``): its children go there too."""
    return ctx.run.dir.parents[1]


def plan_child(ctx: Any, phase: str, *, config: str | Path | None = None, preset: str | None = None,
               overrides: Mapping[str, Any] | None = None, resume: str | Path | None = None) -> RunPlan:
    """A new child run of ``phase`` (the parent's footing, then ``overrides``), or ``resume`` of one
    (which needs the world size it was checkpointed with: its own launcher refuses another)."""
    from dataclasses import replace

    from voltx.runs.layout import new_run_id

    if resume is not None:
        plan = plan_run(phase, runs_dir=runs_root(ctx), resume=str(resume))
    else:
        plan = plan_run(phase, config=config, preset=preset, overrides={**parent_overrides(ctx), **(overrides or {})},
                        runs_dir=runs_root(ctx), run_id=new_run_id())
    return replace(plan, launch=tuple(ctx.launch))


_TAG = re.compile(r"\[([\w.:/-]+)\] ?")
"""A line's own prefix, ``[cognate-reasoning] ...`` or a nested chain's ``[lstm/lvm] ...`` (not the seed's
``[Epoch 1/4]``, which holds a space)."""


def child_line(label: str, line: str) -> str:
    """A child's output line as the parent shows it, under one prefix naming the child: ``[f1] ...``
    for a line of its own; a line the child already prefixed keeps that prefix when it names the child
    (``[cognate-reasoning]`` under ``cognate``), else the two become one (``[f1/grounding]``,
    ``[lstm/lvm]``)."""
    line = line.rstrip()
    tag = _TAG.match(line)
    if tag is None:
        return f"[{label}] {line}".rstrip()
    own, rest = tag.group(1), line[tag.end():]
    merged = own if own == label or own.startswith(f"{label}-") else f"{label}/{own}"
    return f"[{merged}] {rest}".rstrip()


def run_child(ctx: Any, label: str, argv: list[str]) -> int:
    """Run one child process to its end, echoing its output on the parent's under one prefix
    (:func:`child_line`), forwarding a stop request as SIGTERM (it checkpoints and exits 75); its exit code."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            ctx.say(child_line(label, line))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    forwarded = False
    while True:
        try:
            code = proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if ctx.stop.requested and not forwarded:
                proc.send_signal(signal.SIGTERM)  # the child checkpoints at its next step and exits 75
                forwarded = True
    reader.join(timeout=5)
    return code


def child_verdicts(run_dir: Path) -> list[Deliverable]:
    """A child run's deliverable verdicts; a malformed one (``passed`` not true/false ...) is skipped,
    never taken for a pass."""
    got = read_jsonl(Path(run_dir) / "events.jsonl", parse=parse_event)
    return [ev for ev in got.records if isinstance(ev, Deliverable)]


def child_evaluations(run_dir: Path) -> dict[str, float]:
    """A child run's latest value of every evaluated metric (``<stage>/<metric>``)."""
    got = read_jsonl(Path(run_dir) / "events.jsonl", parse=parse_event)
    out: dict[str, float] = {}
    for ev in got.records:
        if isinstance(ev, Evaluation):
            out.update({k: v for k, v in ev.metrics.items() if v is not None})
    return out


def record_child(ctx: Any, label: str, status: str, run_dir: Path, **fields: Any) -> None:
    """A ``linked_run`` event in the parent: child ``label`` is ``started``/``finished``/``preempted``/``failed``."""
    ctx.run.event("linked_run", label=label, status=status, run_dir=str(run_dir), step=ctx.global_step, **fields)


def recorded_children(ctx: Any) -> tuple[dict[str, LinkedRun], SkippedLines]:
    """The latest ``linked_run`` record per label in the parent's own events (what a resumed
    parent already did), and the damaged lines skipped reading them. The parent's writer is live,
    so a partial last line is left unread, as every reader of a live run leaves it."""
    got = read_jsonl(ctx.run.dir / "events.jsonl", parse=parse_event)
    skipped = SkippedLines("events.jsonl")
    for problem in got.problems:
        skipped.add(problem)
    return {ev.label: ev for ev in got.records if isinstance(ev, LinkedRun)}, skipped
