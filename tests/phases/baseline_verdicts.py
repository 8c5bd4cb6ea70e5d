"""A check the phase tests share: a run's verdicts are held to the baselines the same run logged."""

from __future__ import annotations

import pytest


def assert_verdicts_refuse_their_baselines(deliverables, evals: dict, verdicts: list[dict]) -> None:
    """For each deliverable: its verdict names the strongest baseline the run logged, and the
    deliverable's own judge refuses a value that only matches that baseline."""
    by_metric = {v["metric"]: v for v in verdicts}
    for d in deliverables:
        logged = {k: evals[k] for k in d.baselines}
        best = max(logged.values()) if d.higher_is_better else min(logged.values())
        assert by_metric[d.metric]["baseline"] == pytest.approx(best), d.metric
        assert not d.judge({**evals, d.metric: best})["passed"], d.metric
