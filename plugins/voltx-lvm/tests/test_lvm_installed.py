"""Installed (``pip install ./plugins/voltx-lvm``, editable in the test command), voltx lists the
plugin and its phases through the real entry point, in a fresh interpreter, without torch."""

from __future__ import annotations

import json
import subprocess
import sys

from lvm_support import voltx_cmd, voltx_env, isolated  # noqa: F401 (autouse)

PROBE = """
import json, sys
import voltx_lvm
print(json.dumps({"torch": "torch" in sys.modules}))
"""


def voltx_json(tmp_path, *args):
    proc = subprocess.run(voltx_cmd(*args, "--json"), capture_output=True, text=True, timeout=120,
                          env={**voltx_env(tmp_path / "runs"), "VOLTX_STRICT_PLUGINS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_voltx_plugins_and_phases_list_the_distribution(tmp_path):
    plugins = {p["name"]: p for p in voltx_json(tmp_path, "plugins")["plugins"]}
    lvm = plugins["lvm"]
    assert (lvm["distribution"], lvm["status"], lvm["builtin"]) == ("voltx-lvm", "loaded", False)
    assert lvm["provides"] == {"phases": ["lvm", "lvm-sweep"]}
    phases = {p["name"]: p for p in voltx_json(tmp_path, "phases")["phases"]}
    assert phases["lvm"]["distribution"] == phases["lvm-sweep"]["distribution"] == "voltx-lvm"
    assert [(d["metric"], d["threshold"]) for d in phases["lvm"]["deliverables"]] == [("lvm/cosine", 0.7), ("lvm/cosine", 0.85)]


def test_the_entry_point_module_is_import_light(tmp_path):
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=voltx_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"torch": False}
