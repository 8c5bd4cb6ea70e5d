"""Each plugin distribution (``plugins/voltx-*/``) builds a wheel that ``pip install`` can put in any
environment with voltx: its package and its ``voltx`` entry points, nothing of voltx itself. (That
an installed distribution is listed by ``voltx phases`` / ``voltx plugins`` through that entry point
is plugins/voltx-lvm/tests/test_lvm_installed.py.)"""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = sorted(p for p in (REPO / "plugins").glob("voltx-*") if (p / "pyproject.toml").is_file())

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_a_plugin_wheel_holds_its_package_and_entry_points(tmp_path, dist):
    proc = subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=dist)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = tmp_path.glob("*.whl")
    project = tomllib.loads((dist / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]["voltx"]
    with zipfile.ZipFile(whl) as zf:
        names = zf.namelist()
        (ep_file,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        eps = configparser.ConfigParser()
        eps.read_string(zf.read(ep_file).decode())
    assert dict(eps["voltx"]) == declared
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {target.split(":")[0].split(".")[0] for target in declared.values()}  # its own package, not voltx
    assert "voltx" in project["dependencies"]
