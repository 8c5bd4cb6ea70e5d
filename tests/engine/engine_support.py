"""Engine test helpers: one intra-op thread, unit frames, a silent attention and a toy VFN.

Not a conftest.py (see tests/console/pilot_support.py): the test modules import these by name;
importing ``one_thread`` is what turns it on for a module."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from voltx.engine.attention import SlotAttention

DIM = 16
"""Slot width of the toy frames: small enough for exact float64 checks in milliseconds."""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster, and steady on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def unit(*shape, seed=0):
    """Seeded float64 vectors on the unit sphere (a frame's slots)."""
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=-1)


def silent_attention(dim=DIM):
    """Attention whose messages are exactly zero (Wv and its bias 0), to isolate the VFN's effect."""
    a = SlotAttention(dim).double()
    a.wv.weight.data.zero_()
    a.wv.bias.data.zero_()
    return a


class TowardTarget(nn.Module):
    """Toy VFN: drift = gain * (target - s), toward the target for gain > 0 (contracting), away for
    gain < 0; records every call's inputs."""

    def __init__(self, target, gain=1.0):
        super().__init__()
        self.target, self.gain, self.calls = target, gain, []

    def forward(self, x, t):
        self.calls.append((x.clone(), t.clone()))
        return self.gain * (self.target - x)
