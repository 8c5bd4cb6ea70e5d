"""``voltx run lvm`` through the runner: every architecture trains, evaluates beside its
baselines and saves its model (bad data: test_lvm_bad_input.py)."""

from __future__ import annotations

import pytest
from lvm_support import TINY, rotating_articles, run_dirs, isolated  # noqa: F401 (autouse)
from voltx.testing import evaluated_metrics as evaluated, run_events as events

from voltx.errors import EXIT_OK
from voltx.plugins import load_plugins
from voltx.train.runner import RunRequest, execute

BASELINES = ("lvm/cosine_copy_last", "lvm/cosine_context_mean", "lvm/cosine_linear")


def run_lvm(tmp_path, data, **overrides) -> tuple[int, object]:
    plugins = load_plugins(refresh=True)  # the installed distribution (pip install -e plugins/voltx-lvm)
    assert plugins.provider("phases", "lvm") == "lvm", "voltx-lvm is not installed"
    req = RunRequest(phase="lvm", runs_dir=str(tmp_path / "runs"), progress="plain",
                     overrides={"data": str(data), **TINY, **overrides})
    code = execute(req, plugins=plugins, restore_signals=True)
    (run_dir,) = run_dirs(tmp_path / "runs")
    return code, run_dir


@pytest.mark.parametrize("model", ["lstm", "gru", "transformer", "mamba"])
def test_each_architecture_trains_and_is_judged_beside_the_baselines(tmp_path, model):
    data = rotating_articles(tmp_path / "rot.npz", articles=12, length=20)
    code, run_dir = run_lvm(tmp_path, data, model=model, epochs=1)
    assert code == EXIT_OK, (run_dir / "stdout.log").read_text()[-2000:]
    metrics = evaluated(run_dir)
    assert {"lvm/cosine", "lvm/dev_cosine", "lvm/mse", *BASELINES} <= set(metrics)
    verdicts = [e for e in events(run_dir) if e["kind"] == "deliverable"]
    assert [(v["metric"], v["threshold"]) for v in verdicts] == [("lvm/cosine", 0.70), ("lvm/cosine", 0.85)]
    assert (run_dir / "artifacts" / "lvm_model.safetensors").exists()
    data_event = next(e for e in events(run_dir) if e["kind"] == "data")
    assert data_event["fit"] + data_event["dev"] + data_event["valid"] == data_event["windows"] == 12 * 15


def test_a_learnable_dynamic_is_learned_past_every_baseline(tmp_path):
    """next = a fixed rotation of the last vector: copy-last and the context mean cannot follow it,
    a trained LSTM must (the ridge baseline, a linear map, can too: it is the bar here)."""
    data = rotating_articles(tmp_path / "rot.npz", articles=30)
    code, run_dir = run_lvm(tmp_path, data, model="lstm", hidden=32, epochs=6, lr=1e-2, warmup=5, batch_size=32)
    assert code == EXIT_OK
    m = evaluated(run_dir)
    assert m["lvm/cosine"] > max(m["lvm/cosine_copy_last"], m["lvm/cosine_context_mean"]) + 0.3, m
    assert m["lvm/cosine_linear"] > 0.9 and m["lvm/cosine"] > 0.85, m
