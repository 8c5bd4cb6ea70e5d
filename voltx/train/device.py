"""Device selection and determinism switches from [hardware]."""

from __future__ import annotations

import os
import sys

import torch

from voltx.config import HardwareConfig
from voltx.errors import ConfigError


def pick_device(hw: HardwareConfig) -> torch.device:
    name = hw.device
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"hardware.device: {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"hardware.device = {name!r} but CUDA is not available here (torch {torch.__version__}). "
            "Use hardware.device=cpu or auto, or install a CUDA build of torch."
        )
    return device


def configure_determinism(hw: HardwareConfig, device: torch.device) -> None:
    if not hw.deterministic:
        return
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # What torch.use_deterministic_algorithms(True, warn_only=True) does, less its import of
    # torch._inductor.config (torch._dynamo, sympy: ~800 modules, 3 s of CPU at every run's start)
    # for a flag that only torch.compile reads. A compile later in the process still sees it: an
    # inductor config imported from now on reads the variable, one imported already gets the flag.
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True
    torch._C._set_deterministic_algorithms(True, warn_only=True)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
