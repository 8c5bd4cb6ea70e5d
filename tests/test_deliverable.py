"""The verdict rule: a deliverable passes only past its threshold and past its strongest baseline."""

import pytest

from voltx.plugin_specs import Deliverable


def test_a_deliverable_without_a_baseline_cannot_be_declared():
    with pytest.raises(ValueError, match="name at least one baseline"):
        Deliverable("f3/denoise", ">", 0.65)
    with pytest.raises(TypeError, match="tuples"):
        Deliverable("f3/denoise", ">", 0.65, baselines="f3/frame_mean")
    with pytest.raises(ValueError, match="margin"):
        Deliverable("f3/denoise", ">", 0.65, baselines=("f3/frame_mean",), margin=-0.1)


def test_a_value_a_no_model_method_matches_does_not_pass():
    d = Deliverable("f3/denoise", ">", 0.65, baselines=("f3/before", "f3/frame_mean"), ablations=("f3/rar_off",))
    # the F3 loophole: RAR at 0.70 clears the plan's 0.65, the frame mean (no model) gets 0.97
    v = d.judge({"f3/denoise": 0.70, "f3/before": 0.10, "f3/frame_mean": 0.97, "f3/rar_off": 0.10})
    assert v["passed"] is False
    assert v["baseline_metric"] == "f3/frame_mean" and v["baseline"] == 0.97
    assert "does not beat the baseline f3/frame_mean" in v["reason"]
    assert v["ablations"] == {"f3/rar_off": 0.10}
    tie = d.judge({"f3/denoise": 0.97, "f3/before": 0.10, "f3/frame_mean": 0.97})
    assert tie["passed"] is False  # matching a trivial method is not earning the verdict


def test_the_margin_and_the_direction():
    d = Deliverable("f1/dog_canine", ">", 0.70, baselines=("f1/unrelated",), margin=0.1)
    assert d.judge({"f1/dog_canine": 0.95, "f1/unrelated": 0.80})["passed"] is True
    assert d.judge({"f1/dog_canine": 0.85, "f1/unrelated": 0.78})["passed"] is False  # only 0.07 past it
    q = Deliverable("f2/qe", "<", 0.15, baselines=("f2/qe_k1",))
    assert q.judge({"f2/qe": 0.04, "f2/qe_k1": 0.042})["passed"] is True
    lost = q.judge({"f2/qe": 0.041, "f2/qe_k1": 0.041})
    assert lost["passed"] is False and "f2/qe_k1" in lost["reason"]
    assert q.judge({"f2/qe": 0.20, "f2/qe_k1": 0.9})["reason"].startswith("0.2 does not meet the threshold < 0.15")


def test_an_unmeasured_value_or_baseline_fails_with_the_reason():
    d = Deliverable("m", ">", 0.5, baselines=("b1", "b2"))
    assert d.judge({})["reason"] == "m was not measured"
    v = d.judge({"m": 0.9, "b1": 0.1, "b2": float("nan")})
    assert v["passed"] is False and v["reason"] == "baseline not measured: b2"
    assert v["baselines"] == {"b1": 0.1, "b2": None}
