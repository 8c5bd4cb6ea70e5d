"""Fixtures of the trio tests."""

from __future__ import annotations

import pytest
from trio_support import only_run, run_trio


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """One uninterrupted tiny run of the creative role: its run directory."""
    runs = tmp_path_factory.mktemp("trio-runs")
    assert run_trio(runs) == 0
    return only_run(runs)
