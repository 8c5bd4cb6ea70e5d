"""docs/plugins.md: its examples are real, loadable plugins that do what the guide says."""

from __future__ import annotations

import inspect
import json
import re

import pytest
from plugin_support import (HELLO_SOURCE, REPO, TOY_SOURCE, TOY_STEPS, install, load_source, only_run, run_cli,
                            without_repo_distributions)

from voltx import hookspecs
from voltx.plugins import load_plugins

DOC = REPO / "docs" / "plugins.md"


def blocks(lang: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [m.group(2) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M) if m.group(1) == lang]


def plugin_blocks() -> list[str]:
    return [b for b in blocks("python") if "@hookimpl" in b]


def example(marker: str) -> str:
    [block] = [b for b in plugin_blocks() if marker in b]
    return block


def test_every_hook_has_a_section():
    hooks = [n for n, _ in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith(("register_", "on_"))]
    text = DOC.read_text(encoding="utf-8")
    assert len(hooks) == 10
    for hook in hooks:
        assert f"### `{hook}`" in text, hook


def test_tested_examples_are_in_the_guide_verbatim():
    python = blocks("python")
    assert TOY_SOURCE in python
    assert HELLO_SOURCE in python


def test_python_blocks_compile():
    for i, block in enumerate(blocks("python")):
        compile(block, f"docs/plugins.md python block {i}", "exec")


@pytest.mark.parametrize("index", range(len(plugin_blocks())))
def test_plugin_examples_load_cleanly(index, monkeypatch):
    module = load_source(monkeypatch, f"voltx_docs_example_{index}", plugin_blocks()[index])
    ps = load_plugins(extra=[("example", module)], refresh=True)
    assert ps.failures == []
    assert ps.plugins["example"].status == "loaded"
    assert ps.plugins["example"].hooks


def test_toml_examples_are_valid():
    import tomllib

    from voltx.config import build_config

    tomls = [tomllib.loads(b) for b in blocks("toml")]
    [pyproject] = [t for t in tomls if "project" in t]
    assert pyproject["project"]["entry-points"]["voltx"] == {"voltx_toy": "voltx_toy"}
    run_tables = [t for t in tomls if "run" in t]
    assert len(run_tables) == 2
    ps = load_plugins(refresh=True)
    for table in run_tables:
        cfg = build_config(table)  # the strict config parser accepts them
        for name in cfg.run.alert_rules:
            if name != "loss-ceiling":
                ps.get("alert_rules", name)
        for name in cfg.run.sinks:
            if name != "losslog":
                ps.get("sinks", name)


def test_json_example_has_the_listing_shape():
    [listing] = [json.loads(b) for b in blocks("json")]
    assert set(listing) == {"plugins", "failures"}
    from voltx.plugins import PluginFailure, PluginInfo

    assert set(listing["plugins"][0]) == set(PluginInfo("n", "m", "d", "v", False).as_dict())
    assert set(listing["failures"][0]) == set(PluginFailure("p", "d", "s", "e").as_dict())


def test_did_you_mean_example_is_what_the_cli_prints(tmp_path):
    [line] = [ln for ln in DOC.read_text(encoding="utf-8").splitlines() if ln.startswith("voltx: error: unknown phase")]
    env = without_repo_distributions(install(tmp_path / "site", "voltx-toy", "voltx_toy", TOY_SOURCE))
    proc = run_cli("run", "translater", env=env, timeout=60)
    assert proc.stderr.strip() == line


def test_sink_alert_and_notify_examples_in_a_run(tmp_path, monkeypatch, capsys):
    from voltx.train.runner import RunRequest, execute

    toy = load_source(monkeypatch, "voltx_toy", TOY_SOURCE)
    sink = load_source(monkeypatch, "voltx_losslog", example("LossLog"))
    rule = load_source(monkeypatch, "voltx_ceiling", example("LossCeiling"))
    notify = load_source(monkeypatch, "voltx_notify", example("[notify]"))
    ps = load_plugins(extra=[("toy", toy), ("losslog", sink), ("ceiling", rule), ("notify", notify)], refresh=True)
    assert ps.failures == []
    runs = tmp_path / "runs"
    req = RunRequest(phase="toy", runs_dir=str(runs), overrides=("run.log_every=1", 'run.sinks=["losslog"]', 'run.alert_rules=["loss-ceiling"]'))
    assert execute(req, plugins=ps) == 0
    run_dir = only_run(runs, "toy")
    *lines, end = (run_dir / "loss.txt").read_text().splitlines()
    assert [int(ln.split()[0]) for ln in lines] == list(range(1, TOY_STEPS + 1))
    assert end == "end finished"  # the sink saw the run's end record too
    [verdict] = (run_dir / "verdicts.txt").read_text().splitlines()
    assert verdict.startswith("PASS fit/mse ") and verdict.endswith(" < 100.0")
    out = capsys.readouterr().out
    assert f"[notify] toy started in {run_dir}" in out
    assert f"[notify] toy finished: {run_dir}" in out

    check = rule.LossCeiling(run_dir).check
    assert check({"step": 1, "losses": {"loss": 5.0}}) is None
    assert check({"step": 2, "losses": {"loss": 5000.0}}) == "loss 5000 is above 1000"
    assert check({"step": 3, "losses": {"loss": 6000.0}}) is None  # once per incident


def test_converter_example(monkeypatch):
    module = load_source(monkeypatch, "voltx_docs_converters", example("register_converters(register)"))
    ps = load_plugins(extra=[("ex", module)], refresh=True)
    assert ps.get("converters", "wiki-triples").formats == ("triples",)


def test_strand_example_is_routed_by_the_intent_router(monkeypatch):
    import torch

    from voltx.engine.frame import TensorFrame
    from voltx.engine.router import IntentRouter

    module = load_source(monkeypatch, "voltx_docs_strands", example("register_strands(register)"))
    ps = load_plugins(extra=[("ex", module)], refresh=True)
    router = IntentRouter.from_plugins(ps, ["gcd"])
    assert router.strands[0].compute(12, 18) == 6
    frame = TensorFrame.empty(1)
    frame.write(1, 0, router.strands[0].capability_vector())
    frame.write(6, 0, torch.tensor([12.0, 18.0] + [0.0] * 254))
    (decision,) = router.route(frame)
    assert decision.activated and float(frame.read(8, 0)[0]) == 6


def test_testing_example_runs(tmp_path, monkeypatch):
    load_source(monkeypatch, "voltx_toy", TOY_SOURCE)
    [block] = [b for b in blocks("python") if "def test_toy_registers_and_runs" in b]
    namespace: dict = {}
    exec(compile(block, "<docs testing example>", "exec"), namespace)
    namespace["test_toy_registers_and_runs"](tmp_path)  # asserts inside
    assert list((tmp_path / "runs" / "toy").iterdir())


def test_phase_walkthrough_quotes_the_code():
    """"How to write a phase" quotes F2: every line of an excerpt (but ``...``) is in the file its
    first line names, in the same order."""
    excerpts = [b for b in blocks("python") if b.startswith("# phases/voltx_phases/")]
    assert len(excerpts) == 3
    for block in excerpts:
        first, *lines = block.splitlines()
        source = (REPO / first[2:]).read_text(encoding="utf-8").splitlines()
        at = 0
        for line in lines:
            if line.strip() in ("", "..."):
                continue
            assert line in source[at:], f"{first[2:]}: not found (in this order): {line!r}"
            at = source.index(line, at) + 1
