"""A finished ``voltx run lvm`` in voltx-console (Textual's pilot): its loss curve and both
deliverables' verdicts (cosine >= 0.70 and >= 0.85, each a row) beside the strongest baseline."""

from __future__ import annotations

import pytest
from lvm_support import TINY, rotating_articles, run_dirs, isolated  # noqa: F401 (autouse)
from voltx.testing import run_events as events

from voltx.console.app import VoltxConsole
from voltx.console.testing import drawn_detail
from voltx.plugins import load_plugins
from voltx.train.runner import RunRequest, execute

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_a_finished_lvm_run_shows_its_curve_and_both_verdicts(tmp_path):
    data = rotating_articles(tmp_path / "rot.npz", articles=12, length=20)
    req = RunRequest(phase="lvm", runs_dir=str(tmp_path / "runs"), progress="plain", overrides={"data": str(data), **TINY})
    assert execute(req, plugins=load_plugins(refresh=True), restore_signals=True) == 0
    (run,) = run_dirs(tmp_path / "runs")
    recorded = [e for e in events(run) if e["kind"] == "deliverable"]
    steps = max(e["step"] for e in events(run) if e["kind"] == "evaluation")

    app = VoltxConsole([tmp_path / "runs"], run=run)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await drawn_detail(pilot, lambda s: s.query_one("#plot-loss").points, "the loss curves")
        assert screen.query_one("#plot-loss").points >= steps  # the loss terms' curves, every logged step
        await pilot.press("3")  # the Verdicts tab (only the active tab is drawn)
        board = (await drawn_detail(pilot, lambda s: s.query_one("#scoreboard").row_count, "the verdicts")).query_one("#scoreboard")
        rows = [[str(cell) for cell in board.get_row(key)] for key in board.rows]
        judged = [(r[0], r[2], r[3], r[6]) for r in rows if r[0] == "lvm/cosine"]
        assert [(metric, target) for metric, target, _, _ in judged] == [("lvm/cosine", ">= 0.7"), ("lvm/cosine", ">= 0.85")]
        for (_, _, baseline, verdict), v in zip(judged, recorded):
            assert ("PASS" if v["passed"] else "FAIL") in verdict
            assert baseline.startswith(f"{v['baseline_metric']} = ")
