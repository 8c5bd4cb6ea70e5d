"""`voltx --help`, `voltx plugins` and `voltx phases` never import torch or textual (nor the trackers).

Each check runs in a fresh interpreter (this one has long since imported torch).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys

import pytest
from plugin_support import TOY_SOURCE, install

PROBE = """
import contextlib, io, json, sys
from voltx.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # --help exits through argparse
        code = exc.code
print(json.dumps({"code": code, "output": out.getvalue(),
                  "torch": "torch" in sys.modules, "textual": "textual" in sys.modules,
                  "trackers": sorted(m for m in ("wandb", "mlflow", "tensorboardX", "fsspec") if m in sys.modules)}))
"""

IMPORT_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps({"torch": "torch" in sys.modules, "textual": "textual" in sys.modules}))
"""


def probe(script: str, *args: str, env: dict | None = None) -> dict:
    import os

    proc = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["plugins"], ["plugins", "--json"], ["phases"], ["phases", "--json"]],
    ids=" ".join,
)
def test_cli_listing_does_not_import_torch_or_textual(argv):
    result = probe(PROBE, *argv, env={"COLUMNS": "200"})
    assert result["code"] in (0, None)
    # the command really ran, with the plugins loaded (help lists the translator's commands)
    assert ("train-encoder" if argv == ["--help"] else "translator") in result["output"]
    assert result["torch"] is False, f"voltx {' '.join(argv)} imported torch"
    assert result["textual"] is False, f"voltx {' '.join(argv)} imported textual"
    assert result["trackers"] == [], f"voltx {' '.join(argv)} imported {result['trackers']}"  # the sinks' extras load only in a run


def test_listing_with_a_third_party_phase_stays_light(tmp_path):
    # The toy phase's runner needs torch; listing it must not import it.
    env = install(tmp_path / "site", "voltx-toy", "voltx_toy", TOY_SOURCE)
    result = probe(PROBE, "phases", "--json", env=env)
    assert "toy" in [p["name"] for p in json.loads(result["output"])["phases"]]
    assert (result["torch"], result["textual"]) == (False, False)


def builtin_entry_points() -> list[md.EntryPoint]:
    return sorted((ep for ep in md.entry_points(group="voltx") if ep.dist and ep.dist.name == "voltx"), key=lambda ep: ep.name)


def test_builtin_entry_points_are_the_known_ones():
    assert {ep.name for ep in builtin_entry_points()} >= {"translator", "alerts", "sinks"}


@pytest.mark.parametrize("module", [ep.value.partition(":")[0] for ep in builtin_entry_points()])
def test_builtin_entry_point_module_imports_without_torch(module):
    result = probe(IMPORT_PROBE, module)
    assert result == {"torch": False, "textual": False}, f"{module} imports torch or textual at module top"


def test_probe_detects_torch(tmp_path):
    # The probe sees a module that imports torch (a stand-in: the real import costs seconds).
    (tmp_path / "imports_torch.py").write_text("import sys, types\nsys.modules['torch'] = types.ModuleType('torch')\n")
    assert probe(IMPORT_PROBE, "imports_torch", env={"PYTHONPATH": str(tmp_path)})["torch"] is True


def test_console_never_imports_the_cli():
    """The console reads the run store through voltx.runs (and formats through voltx.formatting),
    never through the command-line package: a scan of every import, lazy ones included."""
    import ast
    from pathlib import Path

    import voltx.console

    offenders = []
    for path in sorted(Path(voltx.console.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n == "voltx.cli" or n.startswith("voltx.cli.") for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"voltx.console imports voltx.cli at {offenders}"
