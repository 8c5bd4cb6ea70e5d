"""voltx-console speed and memory, each against a reference measured in the same run.

    python benchmarks/bench_console.py [--steps 1000000] [--tail-seconds 10]

1. open: a finished run with STEPS logged steps; the console (headless, 160x48) opens its
   detail. Figures: seconds to the first chart (strided preview), seconds to the exact
   downsampled chart, peak RSS. Reference: the naive full load (every line through
   ``json.loads`` into a list of dicts, what ``RunReader.refresh`` does), time and RSS.
2. tail: a writer process logs 200 steps/s into a live run while the detail is open;
   console CPU as a share of one core and event-loop lag with no input, then key press
   latency to the handler and to the redrawn tab. Reference: one chart redraw by plotext
   (what textual-plotext draws with) vs voltx's numpy braille renderer.
3. start-up: seconds from interpreter start to the runs screen listing the runs
   (reference: a bare ``python -c pass``), and whether torch got imported.

Each measurement runs in a fresh child process so RSS and CPU belong to it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "console"))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE), "--child", *args], capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- children ---------------------------------------------------------------------------------
def child_open(run_dir: str) -> dict:
    from voltx.console.app import VoltxConsole

    async def body():
        app = VoltxConsole([Path(run_dir).parent.parent], run=Path(run_dir))
        t0 = time.perf_counter()
        first = exact = None
        async with app.run_test(size=(160, 48)) as pilot:
            while exact is None and time.perf_counter() - t0 < 120:
                await pilot.pause(0.02)
                screen = app.screen
                plot = screen.query("#plot-loss")
                if plot and plot.first().points:
                    first = first or time.perf_counter() - t0
                    if not screen.view.series.preview and screen._loaded:
                        exact = time.perf_counter() - t0
            points = app.screen.query_one("#plot-loss").points
            steps = len(app.screen.view.series)
        return {"first_chart_s": first, "exact_chart_s": exact, "rss_mb": rss_mb(), "points": points, "steps": steps}

    return asyncio.run(body())


def child_naive(run_dir: str) -> dict:
    from voltx.runs.store import RunReader

    t0 = time.perf_counter()
    reader = RunReader(Path(run_dir))
    reader.refresh()
    n = len(reader.metrics)
    return {"seconds": time.perf_counter() - t0, "rss_mb": rss_mb(), "steps": n}


def child_writer(run_dir: str, seconds: str) -> dict:
    from run_factory import append_steps, hold_lock

    with hold_lock(Path(run_dir)):
        print("ready", flush=True)
        step, end = 11, time.monotonic() + float(seconds)
        while time.monotonic() < end:  # 200 steps/s in 20 ms batches, like the buffered writer flushing
            append_steps(Path(run_dir), step, 4, total=10**7)
            step += 4
            time.sleep(0.02)
    return {"steps": step}


def child_tail(run_dir: str, seconds: str) -> dict:
    """Tail a live run on the Loss tab: CPU share and event-loop lag with no input, then the
    latency of key presses (tab switches) while it keeps tailing. Keys go through the driver
    like real input; latency is measured to the binding's effect (the active tab changed) and
    to the redrawn tab, not through Pilot.press (which also waits for animations to end)."""
    from textual import events
    from textual.widgets import TabbedContent

    from voltx.console.app import VoltxConsole

    async def body():
        app = VoltxConsole([Path(run_dir).parent.parent], run=Path(run_dir))
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause(1.0)
            screen = app.screen
            lags: list[float] = []

            async def probe():  # how late a 10 ms sleep wakes up = how long input would wait
                while True:
                    t = time.perf_counter()
                    await asyncio.sleep(0.01)
                    lags.append(time.perf_counter() - t - 0.01)

            task = asyncio.create_task(probe())
            r0, c0, t0 = screen.redraws, time.process_time(), time.perf_counter()
            await asyncio.sleep(float(seconds))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            redraws = (screen.redraws - r0) / wall
            tabs = screen.query_one("#tabs", TabbedContent)
            handled, drawn = [], []
            for i in range(12):
                target, key = ("speed", "2") if i % 2 == 0 else ("loss", "1")
                before = screen.redraws
                k0 = time.perf_counter()
                app._driver.send_message(events.Key(key, key))
                while tabs.active != target:
                    await asyncio.sleep(0.001)
                handled.append(time.perf_counter() - k0)
                while screen.redraws == before:
                    await asyncio.sleep(0.001)
                drawn.append(time.perf_counter() - k0)
                await asyncio.sleep(0.5)
            task.cancel()
            lags.sort(), handled.sort(), drawn.sort()
            ms = lambda xs, q: 1000 * xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
            return {"cpu_share": cpu / wall, "redraws_per_s": redraws, "lag_p50_ms": ms(lags, 0.5), "lag_max_ms": ms(lags, 1.0),
                    "key_p50_ms": ms(handled, 0.5), "key_max_ms": ms(handled, 1.0), "drawn_p50_ms": ms(drawn, 0.5),
                    "drawn_max_ms": ms(drawn, 1.0), "steps_seen": len(screen.view.series)}

    return asyncio.run(body())


def chart_render() -> dict | None:
    """One chart redraw at 160x22 (3 series of 300 points, what a run detail plots): voltx's
    numpy braille renderer vs plotext (the library it replaced), when plotext is installed."""
    import numpy as np

    from voltx.console.widgets.charts import render_chart

    rng = np.random.default_rng(0)
    x = np.arange(300.0)
    series = {f"loss{i}": (x.tolist(), (np.exp(-x / 100) + 0.05 * rng.random(300) + i).tolist()) for i in range(3)}
    n = 30
    t = time.perf_counter()
    for _ in range(n):
        render_chart(series, 160, 22, title="loss")
    ours = (time.perf_counter() - t) / n
    try:
        import plotext as plt
        from rich.text import Text
    except ImportError:
        return {"voltx_ms": 1000 * ours, "plotext_ms": None}
    t = time.perf_counter()
    for _ in range(n):
        plt.clear_data(), plt.clear_figure(), plt.plotsize(160, 22), plt.title("loss")
        for name, (xs, ys) in series.items():
            plt.plot(xs, ys, label=name, marker="braille")
        Text.from_ansi(plt.build())  # textual-plotext hands plotext's ANSI output to rich like this
    ref = (time.perf_counter() - t) / n
    return {"voltx_ms": 1000 * ours, "plotext_ms": 1000 * ref}


def child_startup(root: str) -> dict:
    t0 = time.perf_counter()
    from voltx.console.app import VoltxConsole

    async def body():
        app = VoltxConsole([Path(root)])
        async with app.run_test(size=(120, 40)) as pilot:
            while time.perf_counter() - t0 < 30:
                await pilot.pause(0.01)
                if getattr(app.screen, "scans", 0):
                    break
            return {"first_screen_s": time.perf_counter() - t0, "rows": app.screen.query_one("#runs").row_count,
                    "torch_imported": "torch" in sys.modules}

    return asyncio.run(body())


# -- driver -----------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--tail-seconds", type=float, default=10.0)
    p.add_argument("--child", nargs="+")
    args = p.parse_args()
    if args.child:
        name, *rest = args.child
        print(json.dumps(globals()[f"child_{name}"](*rest)))
        return
    from run_factory import make_big_run, make_run

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        t = time.perf_counter()
        big = make_big_run(root, steps=args.steps)
        size_mb = (big / "metrics.jsonl").stat().st_size / 1e6
        print(f"wrote {args.steps:,} steps ({size_mb:.0f} MB) in {time.perf_counter() - t:.1f}s")

        opened = child("open", str(big))
        naive = child("naive", str(big))
        print("\n1. open a run with %s steps" % f"{opened['steps']:,}")
        print(f"   console: first chart {opened['first_chart_s']:.2f}s (preview), exact chart {opened['exact_chart_s']:.2f}s, "
              f"peak RSS {opened['rss_mb']:.0f} MB, {opened['points']} points plotted")
        print(f"   naive full load (json.loads per line into dicts): {naive['seconds']:.2f}s, peak RSS {naive['rss_mb']:.0f} MB")
        print(f"   ratio: exact chart {naive['seconds'] / opened['exact_chart_s']:.1f}x faster, first chart "
              f"{naive['seconds'] / opened['first_chart_s']:.1f}x faster, {naive['rss_mb'] / opened['rss_mb']:.1f}x less memory")

        live = make_run(root, "f2", status="running", steps=10)
        writer = subprocess.Popen([sys.executable, str(HERE), "--child", "writer", str(live), str(args.tail_seconds + 3)],
                                  stdout=subprocess.PIPE, text=True)
        writer.stdout.readline()
        tail = child("tail", str(live), str(args.tail_seconds))
        writer.wait()
        chart = chart_render()
        print("\n2. tail a run logging 200 steps/s (detail open on the Loss tab)")
        print(f"   console CPU {100 * tail['cpu_share']:.1f}% of one core, {tail['redraws_per_s']:.1f} redraws/s, "
              f"event-loop lag p50 {tail['lag_p50_ms']:.1f} ms max {tail['lag_max_ms']:.1f} ms, {tail['steps_seen']:,} steps seen")
        print(f"   key press -> handled p50 {tail['key_p50_ms']:.1f} ms max {tail['key_max_ms']:.1f} ms; "
              f"-> new tab drawn p50 {tail['drawn_p50_ms']:.1f} ms max {tail['drawn_max_ms']:.1f} ms")
        if chart["plotext_ms"] is not None:
            print(f"   one chart redraw (160x22, 3 x 300 points): {chart['voltx_ms']:.1f} ms vs plotext {chart['plotext_ms']:.1f} ms: "
                  f"{chart['plotext_ms'] / chart['voltx_ms']:.1f}x faster")
        else:
            print(f"   one chart redraw (160x22, 3 x 300 points): {chart['voltx_ms']:.1f} ms (plotext not installed: no reference)")

        for i in range(20):
            make_run(root, "f3", created_at=1_700_000_000 + 60 * i)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare = time.perf_counter() - t
        t = time.perf_counter()
        start = child("startup", str(root))
        total = time.perf_counter() - t
        print("\n3. start-up")
        print(f"   first runs screen ({start['rows']} runs) {start['first_screen_s']:.2f}s after import start, "
              f"{total:.2f}s including the interpreter (bare python {bare:.2f}s); torch imported: {start['torch_imported']}")


if __name__ == "__main__":
    main()
