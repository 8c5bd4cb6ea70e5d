"""``voltx logs [-f] RUN``: print (and follow) a run's stdout.log."""

from __future__ import annotations

import sys
import time

from voltx.cli.common import add_runs_dir, root_from


def add_parser(sub) -> None:
    p = sub.add_parser("logs", help="print a run's log; -f follows it while the run is alive",
                       description="Print a run's stdout.log (or events.jsonl); -f keeps following it while the run is alive.")
    p.add_argument("run", metavar="RUN", help="run directory, id prefix, or latest")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the run ends")
    p.add_argument("--events", action="store_true", help="print events.jsonl instead of stdout.log")
    p.add_argument("-n", "--lines", type=int, default=0, help="start with only the last N lines (default: 0, the whole log)")
    add_runs_dir(p)
    p.set_defaults(_run=run)


def run(args) -> int:
    from voltx.runs.layout import RunPaths, resolve_run
    from voltx.runs.lock import writer_alive

    run_dir = resolve_run(args.run, root_from(args))
    path = RunPaths(run_dir).events if args.events else RunPaths(run_dir).stdout
    offset = 0
    if args.lines and path.exists():
        data = path.read_bytes()
        lines = data.splitlines(keepends=True)
        sys.stdout.write(b"".join(lines[-args.lines :]).decode("utf-8", "replace"))
        offset = len(data)
    while True:
        # Asked before reading: when the writer is already gone, this read sees its last lines.
        alive = args.follow and writer_alive(run_dir)
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
        except FileNotFoundError:
            chunk = b""
        end = chunk.rfind(b"\n") + 1  # print whole lines only; the rest comes next time
        if end:
            sys.stdout.write(chunk[:end].decode("utf-8", "replace"))
            sys.stdout.flush()
            offset += end
        if not alive:  # nothing more will come: print a partial last line (a killed writer's) too
            if chunk[end:]:
                sys.stdout.write(chunk[end:].decode("utf-8", "replace") + "\n")
            return 0
        time.sleep(0.25)
