"""Built-in alert rules: loss spikes (divergence), throughput drops, low disk.

Each rule sees every logged metrics record; a returned message becomes an ``alert``
event. Rules are rate-limited so one incident is one alert, not one per step.
"""

from __future__ import annotations

import shutil
import statistics
from collections import deque
from pathlib import Path

from voltx import hookimpl
from voltx.plugin_specs import AlertRuleSpec


class LossSpike:
    """Total loss above ``factor`` x its recent median: the run may be diverging."""

    def __init__(self, run_dir: Path, factor: float = 3.0, window: int = 50, warmup: int = 20, cooldown: int = 100):
        self.recent: deque[float] = deque(maxlen=window)
        self.factor, self.warmup, self.cooldown = factor, warmup, cooldown
        self.quiet_until = -1
        self.stage = None

    def check(self, record: dict) -> str | None:
        losses = record.get("losses") or {}
        loss = losses.get("loss")
        if record.get("stage") != self.stage:  # a new stage has a new loss scale
            self.stage = record.get("stage")
            self.recent.clear()
        if not isinstance(loss, (int, float)):
            return None
        step = record.get("step", 0)
        message = None
        if len(self.recent) >= self.warmup and step > self.quiet_until:
            median = statistics.median(self.recent)
            if median > 0 and loss > self.factor * median:
                message = f"loss {loss:.4g} is {loss / median:.1f}x its recent median {median:.4g}"
                self.quiet_until = step + self.cooldown
        self.recent.append(float(loss))
        return message


class ThroughputDrop:
    """Samples/s below half the recent median for ``sustain`` logged steps in a row (data stall,
    thermal throttling, a noisy neighbour). One slow window is not a stall: a garbage collection
    or a busy moment on a shared host makes one, and an alert per blip teaches users to ignore alerts."""

    def __init__(self, run_dir: Path, ratio: float = 0.5, window: int = 30, warmup: int = 10, cooldown: int = 200,
                 sustain: int = 3):
        self.recent: deque[float] = deque(maxlen=window)
        self.ratio, self.warmup, self.cooldown, self.sustain = ratio, warmup, cooldown, sustain
        self.quiet_until = -1
        self.stage = None
        self.slow: list[float] = []
        """The consecutive slow readings so far (kept out of the median they are judged against)."""

    def check(self, record: dict) -> str | None:
        sps = record.get("samples_per_sec")
        if record.get("stage") != self.stage:
            self.stage = record.get("stage")
            self.recent.clear()
            self.slow = []
        if not isinstance(sps, (int, float)) or sps <= 0:
            return None
        if len(self.recent) < self.warmup:
            self.recent.append(float(sps))
            return None
        median = statistics.median(self.recent)
        if sps >= self.ratio * median:
            self.recent.extend(self.slow + [float(sps)])
            self.slow = []
            return None
        self.slow.append(float(sps))
        step = record.get("step", 0)
        if len(self.slow) < self.sustain or step <= self.quiet_until:
            return None
        now = statistics.median(self.slow)
        self.quiet_until = step + self.cooldown
        return (f"throughput {now:.1f} samples/s over the last {len(self.slow)} logged steps is "
                f"{now / median:.0%} of its recent median {median:.1f}")


class LowDisk:
    """Free space on the run's filesystem below ``min_gb`` (checked every ``every`` records)."""

    def __init__(self, run_dir: Path, min_gb: float = 2.0, every: int = 50):
        self.run_dir, self.min_bytes, self.every = run_dir, min_gb * 1024**3, every
        self.count = 0
        self.warned = False

    def check(self, record: dict) -> str | None:
        self.count += 1
        if self.count % self.every != 1 or self.warned:
            return None
        free = shutil.disk_usage(self.run_dir).free
        if free < self.min_bytes:
            self.warned = True
            return f"only {free / 1024**3:.2f} GiB free under {self.run_dir}; checkpoints may fail"
        return None


@hookimpl
def register_alert_rules(register):
    register(AlertRuleSpec("loss-spike", "total loss > 3x its recent median", LossSpike, severity="warning"))
    register(AlertRuleSpec("throughput-drop", "samples/s < 50% of its recent median for 3 logged steps", ThroughputDrop))
    register(AlertRuleSpec("low-disk", "less than 2 GiB free for the run directory", LowDisk, severity="error"))
