"""RAR with an energy head: blend (drift - lambda * dE/ds) and control (energy judges the step)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from engine_support import DIM, TowardTarget, one_thread, silent_attention, unit  # noqa: F401  (one_thread: a fixture)
from voltx.engine.attention import SlotAttention
from voltx.engine.energy import EnergyHead
from voltx.engine.rar import RarConfig, energy_gradient, rar
from voltx.engine.vfn import Vfn

class Quadratic(nn.Module):
    """Energy = sum over active slots of ||s - target||^2 (lowest at the target)."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def forward(self, slots, active):
        return ((slots - self.target).pow(2).sum(-1) * active).sum(-1)


def small_head(seed=0):
    torch.manual_seed(seed)
    return EnergyHead(dim=DIM, hidden=8).double().eval()


def test_a_step_against_the_energy_gradient_lowers_the_energy_of_every_frame():
    head, slots = small_head(), unit(4, 16, DIM)
    active = torch.rand(4, 16, generator=torch.Generator().manual_seed(1)) > 0.3
    grad = energy_gradient(head, slots, active)
    assert not slots.requires_grad and grad.shape == slots.shape
    with torch.no_grad():
        before, after = head(slots, active), head(slots - 1e-3 * grad, active)
        uphill = head(slots + 1e-3 * grad, active)
    assert (after < before).all() and (uphill > before).all()


def test_blend_descends_the_landscape_on_the_sphere():
    # No drift, no message: blend is projected gradient descent on E, which must fall every step.
    target = unit(2, 16, DIM, seed=3)
    energy, start = Quadratic(target), unit(2, 16, DIM)
    active = torch.ones(2, 16, dtype=torch.bool)
    config = RarConfig(epsilon=0.0, max_iterations=5, dt=0.1, energy_mode="blend", energy_weight=1.0)
    values = [energy(start, active)]
    s = start
    for _ in range(5):
        s = rar(s, active, TowardTarget(target, 0.0), silent_attention(), RarConfig(**{**config.__dict__, "max_iterations": 1}),
                energy=energy).slots
        values.append(energy(s, active))
    assert all((b < a).all() for a, b in zip(values, values[1:]))
    assert torch.equal(rar(start, active, TowardTarget(target, 0.0), silent_attention(), config, energy=energy).slots, s)


def test_blend_with_zero_weight_is_plain_rar_bit_for_bit():
    torch.manual_seed(0)
    vfn, attn, head = Vfn(DIM, 32, time_conditioned=True).double(), SlotAttention(DIM).double(), small_head()
    slots = unit(3, 16, DIM)
    active = torch.rand(3, 16, generator=torch.Generator().manual_seed(2)) > 0.3
    sigma = torch.full((3, 16), 0.05, dtype=torch.float64)
    plain = rar(slots, active, vfn, attn, RarConfig(max_iterations=6), sigma=sigma, generator=torch.Generator().manual_seed(4))
    blend = rar(slots, active, vfn, attn, RarConfig(max_iterations=6, energy_mode="blend", energy_weight=0.0), sigma=sigma,
                generator=torch.Generator().manual_seed(4), energy=head)
    for a, b in zip(plain, blend):
        assert torch.equal(a, b)
    weighted = rar(slots, active, vfn, attn, RarConfig(max_iterations=6, energy_mode="blend", energy_weight=0.5), sigma=sigma,
                   generator=torch.Generator().manual_seed(4), energy=head)
    assert not torch.allclose(weighted.slots, plain.slots)


def test_control_keeps_downhill_frames_moving_and_stops_uphill_ones_where_they_were():
    target = unit(2, 16, DIM, seed=3)
    energy, start = Quadratic(target), unit(2, 16, DIM)
    active = torch.ones(2, 16, dtype=torch.bool)
    config = RarConfig(epsilon=0.0, max_iterations=20, dt=0.2, energy_mode="control", energy_halvings=3)
    # frame 0 drifts toward the energy's minimum, frame 1 away from it
    gain = torch.tensor([1.0, -1.0], dtype=torch.float64)[:, None, None]
    out = rar(start, active, TowardTarget(target, gain), silent_attention(), config, energy=energy)
    assert torch.equal(out.slots[1], start[1])  # every uphill step rejected
    assert out.converged[1].all() and torch.equal(out.iterations[1], torch.full((16,), 4))  # 3 halvings, then stop
    assert not out.converged[0].any() and (out.iterations[0] == 20).all()
    assert (energy(out.slots, active)[0] < energy(start, active)[0] * 0.1)
    plain = rar(start, active, TowardTarget(target, gain), silent_attention(), RarConfig(epsilon=0.0, max_iterations=20, dt=0.2))
    assert torch.equal(plain.slots[0], out.slots[0])  # downhill: the step size never shrank
    assert energy(plain.slots, active)[1] > energy(start, active)[1]  # ...and without control frame 1 climbs


def test_control_stops_a_frame_below_the_energy_threshold():
    target = unit(2, 16, DIM, seed=3)
    energy, start = Quadratic(target), unit(2, 16, DIM)
    start[0] = F.normalize(target[0] + 0.01 * start[0], dim=-1)  # frame 0 starts near the minimum
    active = torch.ones(2, 16, dtype=torch.bool)
    config = RarConfig(epsilon=0.0, max_iterations=5, energy_mode="control", energy_stop_below=0.1)
    out = rar(start, active, TowardTarget(target, 1.0), silent_attention(), config, energy=energy)
    assert out.converged[0].all() and not out.iterations[0].any() and torch.equal(out.slots[0], start[0])
    assert (out.iterations[1] == 5).all()


def test_energy_modes_are_checked():
    with pytest.raises(ValueError, match="energy_mode"):
        RarConfig(energy_mode="descend")
    slots, active = unit(1, 16, DIM), torch.ones(1, 16, dtype=torch.bool)
    with pytest.raises(ValueError, match="needs an energy head"):
        rar(slots, active, TowardTarget(slots, 1.0), silent_attention(), RarConfig(energy_mode="blend"))


def test_blend_trains_through_the_energy_gradient():
    torch.manual_seed(0)
    vfn, head = Vfn(DIM, 32, time_conditioned=True).double(), small_head()
    head.train()
    slots, active = unit(2, 16, DIM), torch.ones(2, 16, dtype=torch.bool)
    out = rar(slots, active, vfn, silent_attention(), RarConfig(max_iterations=3, energy_mode="blend", energy_weight=0.5),
              energy=head, differentiable=True)
    out.slots.pow(3).sum().backward()
    assert vfn.fc1.weight.grad.abs().sum() > 0 and head.embed.weight.grad.abs().sum() > 0
