"""Cold start of ``voltx --help`` vs the bare interpreter (``python -c pass``).

Each command runs as a fresh subprocess (stdout/stderr discarded), timed with
time.perf_counter around ``subprocess.run``; commands are interleaved round-robin and the
median of ~15 runs each is reported, after one untimed warm-up run each ("cold" means a
new process, not a cold disk cache).

Commands:
* ``python -c pass``                    - interpreter reference (same interpreter, same env)
* ``python -m voltx --help``            - HEADLINE (goal: under 0.3 s)
* ``voltx --help``                      - the console script ``shutil.which("voltx")`` finds,
                                          plus the real script in this interpreter's scripts dir
                                          if that differs, plus a ``.../shims/voltx`` on PATH if
                                          any (pyenv: a bash shim that re-runs ``pyenv exec``; run
                                          under pyenv's python shim, ``which`` already sees the
                                          real script first, so the shim is looked up explicitly)

Two bytecode modes, because this matters more than anything voltx does:
* cached     - PYTHONDONTWRITEBYTECODE removed and PYTHONPYCACHEPREFIX pointed at a temp dir
               (so the source tree gets no __pycache__): after the warm-up every module loads
               from .pyc, as for any normal install. The RESULT line uses this mode.
* inherited  - the caller's environment as is (reported: if it sets PYTHONDONTWRITEBYTECODE
               and voltx has no __pycache__, every voltx module is compiled on every start).

Finally ``python -X importtime -m voltx --help`` (cached mode) is run once: the 10 imports
with the largest cumulative time (marked [baseline] when ``python -c pass`` imports them
too, e.g. site and its .pth files), then the top 10 that only the voltx process imports.

    python benchmarks/bench_cli_startup.py            # 15 runs each
    python benchmarks/bench_cli_startup.py --quick    # 7 runs each
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _common import emit_json, median

GOAL_S = 0.3
HEAVY = {"torch", "numpy", "textual", "rich", "safetensors", "tokenizers", "psutil", "pluggy", "pandas", "datasets"}


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
    return seconds


def importtime(args: list[str], env: dict) -> list[tuple[int, int, int, str]]:
    """(self us, cumulative us, depth, module) rows of ``python -X importtime <args>``."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_part, cum_part, name = line[len("import time:"):].split("|", 2)
        name = name[1:]  # one separator space; the rest is nesting indentation
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((int(self_part), int(cum_part), depth, name.strip()))
    return rows


def voltx_scripts() -> list[str]:
    """Every `voltx` console script a user could start: the one on PATH, the interpreter's own,
    and a version manager's shim (pyenv) further down PATH."""
    which = shutil.which("voltx")
    direct = Path(sysconfig.get_path("scripts")) / "voltx"
    scripts = []
    if which:
        scripts.append(which)
    if direct.exists() and (not which or Path(which).resolve() != direct.resolve()):
        scripts.append(str(direct))
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        shim = Path(entry) / "voltx"
        if Path(entry).name == "shims" and shim.exists() and str(shim) not in scripts:
            scripts.append(str(shim))
            break
    return scripts


def print_imports(rows: list[tuple[int, int, int, str]], base_mods: set[str]) -> tuple[list, list, list[str]]:
    """Print the heaviest imports of ``voltx --help``; return (top by cumulative time, top among
    voltx's own imports, heavy packages imported)."""
    top_cum = sorted(rows, key=lambda r: -r[1])[:10]
    own = [r for r in rows if r[3] not in base_mods]
    top_own = sorted(own, key=lambda r: -r[1])[:10]
    print("python -X importtime -m voltx --help (cached): top 10 by cumulative time")
    for self_us, cum_us, depth, name in top_cum:
        mark = " [baseline]" if name in base_mods else ""
        print(f"  {cum_us / 1000:7.1f} ms cum {self_us / 1000:6.1f} ms self  {'  ' * depth}{name}{mark}")
    print("top 10 by cumulative time among imports `python -c pass` does not do")
    for self_us, cum_us, depth, name in top_own:
        print(f"  {cum_us / 1000:7.1f} ms cum {self_us / 1000:6.1f} ms self  {'  ' * depth}{name}")
    own_ms = sum(r[0] for r in own) / 1000
    heavy = sorted({r[3].split(".")[0] for r in rows} & HEAVY)
    print(f"  voltx-only imports: {len(own)} modules, {own_ms:.1f} ms summed self time "
          f"(importtime inflates this); heavy packages in the --help process: {', '.join(heavy) or 'none'}")
    return top_cum, top_own, heavy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 runs per command")
    ap.add_argument("--runs", type=int, help="timed runs per command (default 15)")
    args = ap.parse_args()
    runs = args.runs or (7 if args.quick else 15)

    py = sys.executable
    scripts = voltx_scripts()
    if not scripts:
        print("note: no `voltx` console script found; only `python -m voltx` is timed")

    inherited = dict(os.environ)
    inherited.pop("PYTHONPROFILEIMPORTTIME", None)
    pycache = tempfile.mkdtemp(prefix="voltx-bench-pycache-")
    cached = {k: v for k, v in inherited.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = pycache
    modes = {"cached": cached, "inherited": inherited}
    no_write = inherited.get("PYTHONDONTWRITEBYTECODE", "") != ""

    commands: dict[str, tuple[list[str], dict]] = {}
    for mode, env in modes.items():
        commands[f"[{mode}] python -c pass"] = ([py, "-c", "pass"], env)
        commands[f"[{mode}] python -m voltx --help"] = ([py, "-m", "voltx", "--help"], env)
        for s in scripts:
            commands[f"[{mode}] voltx --help ({s})"] = ([s, "--help"], env)

    # From a neutral directory, so no training_config.toml or local package shadows anything.
    os.chdir(tempfile.gettempdir())
    try:
        for cmd, env in commands.values():  # warm-up: writes the .pyc cache in cached mode
            timed(cmd, env)
        times: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(runs):
            for name, (cmd, env) in commands.items():
                times[name].append(timed(cmd, env))
        rows = importtime(["-m", "voltx", "--help"], cached)
        base_mods = {r[3] for r in importtime(["-c", "pass"], cached)}
    finally:
        shutil.rmtree(pycache, ignore_errors=True)

    med = {k: median(v) for k, v in times.items()}
    print(f"CLI cold start: median of {runs} runs each (interleaved), cwd {os.getcwd()}; "
          f"inherited env PYTHONDONTWRITEBYTECODE={'set' if no_write else 'unset'}")
    for name, value in med.items():
        mode = name[1:name.index("]")]
        base = med[f"[{mode}] python -c pass"]
        print(f"  {name:<72} {value:7.3f} s  (min {min(times[name]):.3f}, max {max(times[name]):.3f}; "
              f"{value / base:4.1f}x, +{value - base:.3f} s over the interpreter)")

    top_cum, top_own, heavy = print_imports(rows, base_mods)

    headline, base = med["[cached] python -m voltx --help"], med["[cached] python -c pass"]
    inh = med["[inherited] python -m voltx --help"]
    script = med.get(f"[cached] voltx --help ({scripts[0]})") if scripts else None
    verdict = "meets" if headline < GOAL_S else "MISSES"
    print(f"RESULT python -m voltx --help {headline:.3f} s vs python -c pass {base:.3f} s: ratio {headline / base:.1f}x, "
          f"+{headline - base:.3f} s (goal < {GOAL_S} s: {verdict})"
          + (f"; voltx script {script:.3f} s" if script is not None else "")
          + f"; inherited env (PYTHONDONTWRITEBYTECODE {'set' if no_write else 'unset'}) {inh:.3f} s")
    emit_json("cli_startup", {
        "runs": runs, "median_s": {k: round(v, 4) for k, v in med.items()},
        "interpreter_s": round(base, 4), "voltx_m_help_s": round(headline, 4), "voltx_script_s": None if script is None else round(script, 4),
        "voltx_m_help_inherited_env_s": round(inh, 4), "inherited_dont_write_bytecode": no_write,
        "ratio": round(headline / base, 2), "goal_s": GOAL_S, "scripts": scripts,
        "top_cumulative_ms": [[r[3], round(r[1] / 1000, 1), r[3] in base_mods] for r in top_cum],
        "top_voltx_only_cumulative_ms": [[r[3], round(r[1] / 1000, 1)] for r in top_own],
        "heavy_imports": heavy,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
