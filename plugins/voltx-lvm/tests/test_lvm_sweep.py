"""``voltx run lvm-sweep``: one linked ``lvm`` run per architecture, recorded, evaluated and ranked.
(The console's compare view ranks such runs: tests/console/test_compare.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
from lvm_support import ONE_THREAD, TINY, rotating_articles, run_dirs, isolated  # noqa: F401 (autouse)
from voltx.testing import evaluated_metrics as evaluated, run_events as events

from voltx.errors import EXIT_CONFIG, EXIT_DATA, EXIT_OK, ConfigError, DataError
from voltx.plugins import load_plugins
from voltx.train.runner import RunRequest, execute


def sweep(tmp_path, **settings) -> tuple[int, object]:
    req = RunRequest(phase="lvm-sweep", runs_dir=str(tmp_path / "runs"), overrides=settings, progress="plain")
    return execute(req, plugins=load_plugins(refresh=True), restore_signals=True), tmp_path / "runs"


def test_a_sweep_runs_each_architecture_as_a_linked_run_and_ranks_it(tmp_path, monkeypatch):
    """One architecture keeps it to one child process (each pays torch's import); the loop is the same for four."""
    for key, value in ONE_THREAD.items():
        monkeypatch.setenv(key, value)
    data = rotating_articles(tmp_path / "rot.npz", articles=16, length=20)
    child = [f"{k}={json.dumps(v)}" for k, v in {**TINY, "data": str(data)}.items() if k != "run.log_every"]
    code, root = sweep(tmp_path, models=["gru"], overrides=child)
    assert code == EXIT_OK
    (parent,) = run_dirs(root, "lvm-sweep")
    (gru,) = run_dirs(root, "lvm")
    linked = [(e["label"], e["status"], e["run_dir"]) for e in events(parent) if e["kind"] == "linked_run"]
    assert linked == [("gru", "started", str(gru)), ("gru", "finished", str(gru))]
    assert json.loads((gru / "config.toml").read_text().split("model = ")[1].split("\n")[0]) == "gru"
    assert evaluated(parent)["sweep/gru/cosine"] == evaluated(gru)["lvm/cosine"]
    assert "[lvm-sweep] 1. gru" in (parent / "stdout.log").read_text()


@pytest.mark.parametrize("settings, needle", [
    ({"models": ["lstm", "rnn"]}, "unknown 'rnn'"),
    ({"models": []}, "models is empty"),
    ({"overrides": ["model=gru"]}, "cannot set model"),
])
def test_bad_sweep_settings_are_refused_before_the_run(tmp_path, settings, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        sweep(tmp_path, **settings)
    assert err.value.exit_code == EXIT_CONFIG and not (tmp_path / "runs").exists()


def test_bad_data_fails_the_sweep_before_its_first_child(tmp_path):
    bad = tmp_path / "nan.npz"
    np.savez(bad, vectors=np.full((30, 4), np.nan), article_ids=np.zeros(30, dtype=np.int64))
    with pytest.raises(DataError, match="has NaN or infinite values") as err:
        sweep(tmp_path, models=["gru"], overrides=[f"data={json.dumps(str(bad))}"])
    assert err.value.exit_code == EXIT_DATA and not (tmp_path / "runs").exists()
