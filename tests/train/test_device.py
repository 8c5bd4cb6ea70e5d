"""[hardware].deterministic: torch's deterministic mode on, without importing torch.compile's stack."""

from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import sys, torch
from voltx.config import HardwareConfig
from voltx.train.device import configure_determinism
def state():
    return [torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            "torch._inductor.config" in sys.modules]
configure_determinism(HardwareConfig(deterministic=False), torch.device("cpu"))
print(*state())
configure_determinism(HardwareConfig(deterministic=True), torch.device("cpu"))
print(*state())
import torch._inductor.config as inductor_config  # a torch.compile later in the run
print(inductor_config.deterministic)
"""


def test_deterministic_mode_is_torchs_and_reaches_a_later_compile():
    # a fresh interpreter: whether torch._inductor was imported is a process-wide fact
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_DETERMINISTIC"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["False False False", "True True False", "True"]
