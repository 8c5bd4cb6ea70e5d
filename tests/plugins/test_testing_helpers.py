"""voltx.testing: the public helpers voltx's tests and the plugin distributions' tests share, and
the guard that no test tree keeps a copy of them (a plugin's tests may import only voltx's
public API, so each tree used to carry its own)."""

from __future__ import annotations

import ast

import pytest
from plugin_support import REPO, TOY_SOURCE, load_source

import voltx.testing
from voltx.errors import EXIT_OK, EXIT_PREEMPTED
from voltx.plugins import load_plugins
from voltx.testing import StopAtStep, evaluated_metrics, fake_plugin_dist, only_run, run_events, run_phase

HELPERS = {name for name in vars(voltx.testing) if not name.startswith("_") and getattr(vars(voltx.testing)[name], "__module__", "") == "voltx.testing"}


def test_a_fake_distribution_loads_as_an_installed_plugin(tmp_path, monkeypatch):
    site = fake_plugin_dist(tmp_path / "site", "voltx-toy", "voltx_toy", TOY_SOURCE, version="2.0")
    monkeypatch.syspath_prepend(str(site))
    plugins = load_plugins(refresh=True)
    assert "toy" in plugins.specs("phases") and plugins.failures == []
    assert (site / "voltx_toy-2.0.dist-info" / "entry_points.txt").read_text() == "[voltx]\nvoltx_toy = voltx_toy\n"


def test_a_phase_stopped_at_a_step_resumes_to_its_verdict(tmp_path, monkeypatch):
    toy = load_source(monkeypatch, "voltx_toy", TOY_SOURCE)
    runs = tmp_path / "runs"
    assert run_phase("toy", runs, plugins=load_plugins(extra=[("toy", toy), ("stop", StopAtStep(3))], refresh=True)) == EXIT_PREEMPTED
    run_dir = only_run(runs, "toy")
    assert [e["step"] for e in run_events(run_dir) if e["kind"] == "preempted"] == [3]
    assert run_phase("toy", runs, resume="auto", plugins=load_plugins(extra=[("toy", toy)], refresh=True)) == EXIT_OK
    assert only_run(runs, "toy") == run_dir and evaluated_metrics(run_dir)["fit/mse"] < evaluated_metrics(run_dir)["fit/mse_mean"]
    assert "paths.checkpoints_dir" in (run_dir / "overrides.txt").read_text()  # published under runs/, never the checkout


def test_only_run_names_what_it_found(tmp_path):
    with pytest.raises(AssertionError, match=r"expected one toy run under .*, found \[\]"):
        only_run(tmp_path, "toy")


def test_no_test_tree_keeps_a_copy_of_a_public_helper():
    trees = [REPO / "tests", *sorted((REPO / "plugins").glob("voltx-*/tests"))]
    copies = [f"{path.relative_to(REPO)}:{node.lineno}: {node.name}"
              for tree in trees for path in sorted(tree.rglob("*.py"))
              for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
              if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in HELPERS]
    assert HELPERS >= {"fake_plugin_dist", "run_events", "evaluated_metrics", "run_phase", "StopAtStep"}
    assert not copies, "import these from voltx.testing instead:\n" + "\n".join(copies)
