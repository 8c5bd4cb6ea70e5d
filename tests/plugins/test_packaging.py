"""The wheel ships exactly voltx, voltx_phases and voltx_plugins, with the built-ins' entry points.

An editable install puts the repo root on sys.path, where `phases` and `plugins` import as
namespace packages; only a real wheel shows what users get (DESIGN.md section 2).
"""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from plugin_support import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:  # pip cannot build without isolation here: use the backend directly
        proc = subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
            capture_output=True, text=True, timeout=300, cwd=REPO,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [whl] = out.glob("voltx-*.whl")
    return whl


def test_wheel_top_level_names(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"voltx", "voltx_phases", "voltx_plugins"}
    for module in ("voltx/__init__.py", "voltx/hookspecs.py", "voltx_phases/translator.py", "voltx_plugins/sinks.py"):
        assert module in names


def test_wheel_ships_the_generators_word_lists(wheel):
    """The offline generators read their word lists as package data (importlib.resources)."""
    wordlists = REPO / "plugins" / "voltx_plugins" / "converters" / "wordlists"
    expected = {f"voltx_plugins/converters/wordlists/{p.name}" for p in wordlists.glob("*.txt")}
    assert len(expected) >= 12
    with zipfile.ZipFile(wheel) as zf:
        assert expected <= set(zf.namelist())


def test_wheel_entry_points(wheel):
    with zipfile.ZipFile(wheel) as zf:
        [ep_file] = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(ep_file).decode()
        names = set(zf.namelist())
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str
    parser.read_string(text)
    assert dict(parser["console_scripts"]) == {"voltx": "voltx.cli.main:main", "voltx-console": "voltx.console.app:main"}
    voltx_group = dict(parser["voltx"])
    assert {"translator": "voltx_phases.translator", "alerts": "voltx_plugins.alerts", "sinks": "voltx_plugins.sinks"}.items() <= voltx_group.items()
    for value in voltx_group.values():  # every built-in entry point names a module inside the wheel
        module = value.partition(":")[0]
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, value
    with open(REPO / "pyproject.toml", "rb") as fh:
        declared = tomllib.load(fh)["project"]["entry-points"]["voltx"]
    assert voltx_group == declared
