"""voltx-lvm's tests: each gets its own run store, cache and working directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("VOLTX_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("VOLTX_DISABLE_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    from voltx.plugins import reset_plugins

    reset_plugins()
    yield
    reset_plugins()
