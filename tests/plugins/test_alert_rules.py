"""The built-in throughput-drop rule: a sustained drop alerts once, a blip does not."""

from voltx_plugins.alerts import ThroughputDrop


def feed(rule, speeds, stage="s"):
    return [rule.check({"step": i, "stage": stage, "samples_per_sec": v}) for i, v in enumerate(speeds)]


def test_one_slow_window_is_not_an_alert(tmp_path):
    rule = ThroughputDrop(tmp_path)
    out = feed(rule, [100.0] * 12 + [10.0] + [100.0] * 5 + [10.0, 100.0, 10.0])
    assert [m for m in out if m] == []


def test_a_sustained_drop_alerts_once_with_the_measured_ratio(tmp_path):
    rule = ThroughputDrop(tmp_path)
    out = feed(rule, [100.0] * 12 + [20.0] * 10)
    messages = [m for m in out if m]
    assert len(messages) == 1
    assert out.index(messages[0]) == 14  # the third slow reading in a row
    assert "20.0 samples/s" in messages[0] and "20% of its recent median 100.0" in messages[0]


def test_a_new_stage_starts_a_new_baseline(tmp_path):
    rule = ThroughputDrop(tmp_path)
    feed(rule, [100.0] * 12)
    assert [m for m in feed(rule, [20.0] * 12, stage="t") if m] == []
