"""A finished ``voltx run trio`` in voltx-console (Textual's pilot): its loss curve and the three
deliverables' verdicts, each beside its strongest no-model baseline and the base model (ablation)."""

from __future__ import annotations

import json

import pytest

from voltx.console.app import VoltxConsole
from voltx.console.testing import drawn_detail

from trio_support import finished_run  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
COLUMNS = ("metric", "value", "target", "baseline", "margin", "ablation", "verdict")


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_a_finished_trio_run_shows_its_curve_and_verdicts(finished_run):
    events = [json.loads(line) for line in (finished_run / "events.jsonl").read_text().splitlines()]
    recorded = {e["metric"]: e for e in events if e["kind"] == "deliverable"}
    logged = (finished_run / "metrics.jsonl").read_text().count("\n")
    app = VoltxConsole([finished_run.parents[1]], run=finished_run)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await drawn_detail(pilot, lambda s: s.query_one("#plot-loss").points, "the loss curve")
        assert screen.query_one("#plot-loss").points == logged  # one loss term, every logged step
        await pilot.press("3")  # the Verdicts tab (only the active tab is drawn)
        board = (await drawn_detail(pilot, lambda s: s.query_one("#scoreboard").row_count, "the verdicts")).query_one("#scoreboard")
        rows = {str(board.get_row(k)[0]): dict(zip(COLUMNS, map(str, board.get_row(k)))) for k in board.rows}
        assert set(recorded) == {"trio/exact_match", "trio/heldout_loss", "trio/format_adherence"} and set(recorded) <= set(rows)
        for metric, v in recorded.items():
            row = rows[metric]
            assert ("PASS" if v["passed"] else "FAIL") in row["verdict"]
            assert row["baseline"].startswith(f"{v['baseline_metric']} = ")
            assert row["ablation"].startswith(f"{next(iter(v['ablations']))} = ")
