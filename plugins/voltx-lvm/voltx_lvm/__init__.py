"""voltx-lvm: next-vector language models as voltx phases (``voltx run lvm``, ``voltx run lvm-sweep``).

This module is the plugin's entry point: it only registers the specs (import-light, no torch).
"""

from __future__ import annotations

from voltx import hookimpl

__version__ = "0.1.0"


@hookimpl
def register_phases(register):
    from voltx_lvm.lvm import PHASE
    from voltx_lvm.sweep import PHASE as SWEEP

    register(PHASE)
    register(SWEEP)
