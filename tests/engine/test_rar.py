"""RAR: per-slot freezing, batching, noise, sigma adaptation, time and gradients."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from engine_support import DIM, TowardTarget, one_thread, silent_attention, unit  # noqa: F401  (one_thread: a fixture)
from voltx.engine.attention import SlotAttention, code_bias
from voltx.engine.rar import RarConfig, adapt_sigma, rar
from voltx.engine.vfn import Vfn

def test_all_inactive_returns_zero_iterations():
    slots = unit(2, 16, DIM)
    vfn = TowardTarget(unit(2, 16, DIM, seed=1))
    out = rar(slots, torch.zeros(2, 16, dtype=torch.bool), vfn, silent_attention())
    assert vfn.calls == []
    assert torch.equal(out.slots, slots) and out.converged.all()
    assert not out.iterations.any() and not out.total_iterations.any() and not out.final_deltas.any()


def test_contracting_vfn_converges_within_budget():
    target = unit(3, 16, DIM, seed=1)
    active = torch.ones(3, 16, dtype=torch.bool)
    active[1, 8:] = False
    config = RarConfig(dt=0.5)
    out = rar(unit(3, 16, DIM), active, TowardTarget(target), silent_attention(), config)
    assert out.converged.all()
    assert (out.final_deltas[active] < config.epsilon).all()
    assert 5 < out.total_iterations.max() < config.max_iterations
    cos = F.cosine_similarity(out.slots, target, dim=-1)
    assert (cos[active] > 0.999).all()
    assert torch.equal(out.iterations[~active], torch.zeros(int((~active).sum()), dtype=torch.long))


def test_max_iterations_is_respected():
    config = RarConfig(epsilon=0.0, max_iterations=7)
    active = torch.ones(2, 16, dtype=torch.bool)
    active[0, 3] = False
    vfn = TowardTarget(unit(2, 16, DIM, seed=1))
    out = rar(unit(2, 16, DIM), active, vfn, silent_attention(), config)
    assert len(vfn.calls) == 7
    assert torch.equal(out.iterations, active.long() * 7) and torch.equal(out.total_iterations, torch.tensor([7, 7]))
    assert torch.equal(out.converged, ~active)


def test_converged_slots_stop_moving():
    # Slots 0-3 have their target already: they converge on the first step.
    start = unit(1, 16, DIM)
    target = unit(1, 16, DIM, seed=1)
    target[:, :4] = start[:, :4]
    active = torch.ones(1, 16, dtype=torch.bool)
    short = rar(start, active, TowardTarget(target), silent_attention(), RarConfig(max_iterations=3))
    long = rar(start, active, TowardTarget(target), silent_attention(), RarConfig(max_iterations=12))
    assert short.converged[0, :4].all() and not short.converged[0, 4:].any()
    assert torch.equal(short.iterations[0, :4], torch.ones(4, dtype=torch.long))
    assert torch.equal(long.slots[0, :4], short.slots[0, :4])
    assert not torch.allclose(long.slots[0, 4:], short.slots[0, 4:])


def test_a_closed_settle_gate_makes_its_slots_fixed_points_and_an_open_one_changes_nothing():
    start, target = unit(2, 16, DIM), unit(2, 16, DIM, seed=1)
    active = torch.ones(2, 16, dtype=torch.bool)
    config = RarConfig(max_iterations=10)
    plain = rar(start, active, TowardTarget(target), silent_attention(), config)
    opened = rar(start, active, TowardTarget(target), silent_attention(), config, settle=lambda s: s.new_ones(s.shape[:-1]))
    assert torch.equal(plain.slots, opened.slots) and torch.equal(plain.iterations, opened.iterations)
    # slots 0-7 of the first frame gated shut: they stand still and freeze on the first step; the rest move as before
    shut = torch.ones(2, 16)
    shut[0, :8] = 0.0
    gated = rar(start, active, TowardTarget(target), silent_attention(), config, settle=lambda s: shut)
    assert torch.allclose(gated.slots[0, :8], start[0, :8], atol=1e-6) and gated.converged[0, :8].all()  # renormalised only
    assert torch.equal(gated.iterations[0, :8], torch.ones(8, dtype=torch.long))
    assert torch.equal(gated.slots[1], plain.slots[1]) and not gated.converged[0, 8:].any()


def test_frozen_slots_do_not_move_but_are_still_attended():
    torch.manual_seed(0)
    attn = SlotAttention(DIM).double()
    vfn = TowardTarget(unit(1, 16, DIM, seed=1))
    slots = unit(1, 16, DIM)
    active = torch.ones(1, 16, dtype=torch.bool)
    frozen = torch.zeros(1, 16, dtype=torch.bool)
    frozen[0, 0] = True
    config = RarConfig(epsilon=0.0, max_iterations=5)
    out = rar(slots, active, vfn, attn, config, frozen=frozen)
    assert torch.equal(out.slots[0, 0], slots[0, 0]) and out.iterations[0, 0] == 0 and out.converged[0, 0]
    # Change only the frozen slot: it is a key/value, so the other slots come out different...
    other = slots.clone()
    other[0, 0] = unit(DIM, seed=5)
    moved = rar(other, active, vfn, attn, config, frozen=frozen)
    assert not torch.allclose(moved.slots[0, 1:], out.slots[0, 1:])
    # ...whereas an inactive slot's content has no influence at all.
    inactive = active.clone()
    inactive[0, 0] = False
    a = rar(slots, inactive, vfn, attn, config)
    b = rar(other, inactive, vfn, attn, config)
    assert torch.equal(a.slots[0, 1:], b.slots[0, 1:])


class Mixed(nn.Module):
    """Contracting toward a target plus a small learned part (fixed point: near the target)."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.net = Vfn(DIM, 32).double()

    def forward(self, x, t):
        return (self.target - x) + 0.05 * self.net(x, t)


def test_batched_equals_each_frame_alone():
    torch.manual_seed(0)
    batch = 4
    target = unit(batch, 16, DIM, seed=1)
    vfn, attn = Mixed(target), SlotAttention(DIM).double()
    slots = unit(batch, 16, DIM)
    active = torch.rand(batch, 16) > 0.3
    active[2] = False
    ghosts = unit(batch, 3, DIM, seed=2)
    config = RarConfig(dt=0.3)
    kwargs = dict(bias=code_bias().double(), ghosts=ghosts)
    together = rar(slots, active, vfn, attn, config, **kwargs)
    assert len(set(together.total_iterations.tolist())) == 4  # frames finish at different times
    for row in range(batch):
        vfn.target = target[row : row + 1]
        alone = rar(slots[row : row + 1], active[row : row + 1], vfn, attn, config,
                    bias=code_bias().double(), ghosts=ghosts[row : row + 1])
        assert torch.allclose(alone.slots[0], together.slots[row], atol=1e-10)
        assert torch.equal(alone.iterations[0], together.iterations[row])
        assert torch.equal(alone.converged[0], together.converged[row])
        assert torch.allclose(alone.final_deltas[0], together.final_deltas[row], atol=1e-10)


def test_noise_only_on_active_non_converged_slots_and_from_the_generator():
    slots = unit(2, 16, DIM)
    active = torch.ones(2, 16, dtype=torch.bool)
    active[0, 5:] = False
    frozen = torch.zeros(2, 16, dtype=torch.bool)
    frozen[1, 2] = True
    sigma = torch.full((2, 16), 0.2, dtype=torch.float64)
    sigma[1, 7] = 0.0
    still = TowardTarget(torch.zeros(1), gain=0.0)  # no drift, no message: only noise moves slots
    config = RarConfig(epsilon=0.0, max_iterations=1, noise_scale=1.5)
    out = rar(slots, active, still, silent_attention(), config, sigma=sigma, frozen=frozen,
              generator=torch.Generator().manual_seed(7))
    noise = torch.randn(slots.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    expected = F.normalize(slots + noise * (sigma * 1.5)[..., None], dim=-1)
    moving = active & ~frozen
    assert torch.allclose(out.slots[moving], expected[moving], atol=1e-12)  # incl. sigma 0: no noise
    assert torch.equal(out.slots[~moving], slots[~moving])  # inactive and frozen: untouched
    again = rar(slots, active, still, silent_attention(), config, sigma=sigma, frozen=frozen,
                generator=torch.Generator().manual_seed(7))
    other = rar(slots, active, still, silent_attention(), config, sigma=sigma, frozen=frozen,
                generator=torch.Generator().manual_seed(8))
    assert torch.equal(again.slots, out.slots) and not torch.allclose(other.slots, out.slots)


def test_adapt_sigma_rules():
    sigma = torch.tensor([1.0, 1.0, 1.0, 2.0])
    converged = torch.tensor([True, False, False, False])
    deltas = torch.tensor([0.0, 0.0005, 0.5, 0.002])
    new = adapt_sigma(sigma, converged, deltas, epsilon=0.001)
    assert torch.allclose(new, torch.tensor([0.0, 0.95, 1.05, 2.1]))
    at_threshold = adapt_sigma(torch.ones(1), torch.zeros(1, dtype=torch.bool), torch.tensor([0.001]), 0.001)
    assert at_threshold.item() == pytest.approx(1.05)  # strictly below epsilon decays
    assert torch.equal(sigma, torch.tensor([1.0, 1.0, 1.0, 2.0]))  # input untouched
    assert torch.allclose(adapt_sigma(sigma, converged, deltas, 0.001, decay=0.5, growth=2.0),
                          torch.tensor([0.0, 0.5, 2.0, 4.0]))


@pytest.mark.parametrize(("sigma_epsilon", "factor"), [(None, 1.05), (10.0, 0.95)])
def test_sigma_adapts_inside_the_loop(sigma_epsilon, factor):
    active = torch.ones(1, 16, dtype=torch.bool)
    active[0, 0] = False
    sigma = torch.full((1, 16), 0.01, dtype=torch.float64)
    config = RarConfig(epsilon=0.0, max_iterations=4, adapt_sigma=True, sigma_epsilon=sigma_epsilon)
    vfn = TowardTarget(unit(1, 16, DIM, seed=1))
    out = rar(unit(1, 16, DIM), active, vfn, silent_attention(), config, sigma=sigma,
              generator=torch.Generator().manual_seed(0))
    assert out.sigma[0, 0] == 0
    assert torch.allclose(out.sigma[0, 1:], torch.full((15,), 0.01 * factor**4, dtype=torch.float64))
    fixed = rar(unit(1, 16, DIM), active, vfn, silent_attention(), RarConfig(epsilon=0.0, max_iterations=4),
                sigma=sigma, generator=torch.Generator().manual_seed(0))
    assert torch.equal(fixed.sigma, sigma)


def test_collapsed_update_marks_converged_and_keeps_the_slot():
    class Annihilate(nn.Module):  # s + dt * (-s / dt) = 0 exactly (dt = 0.5) for slots 0-1
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(16, 1, dtype=torch.float64))

        def forward(self, x, t):
            return torch.where(torch.arange(16)[:, None] < 2, -x / 0.5, -0.5 * x + 0.3) * self.scale

    slots = unit(1, 16, DIM)
    vfn = Annihilate()
    out = rar(slots, torch.ones(1, 16, dtype=torch.bool), vfn, silent_attention(),
              RarConfig(epsilon=0.0, max_iterations=3, dt=0.5, beta=0.0), differentiable=True)
    assert out.converged[0, :2].all() and not out.converged[0, 2:].any()
    assert torch.equal(out.slots[0, :2], slots[0, :2]) and torch.equal(out.iterations[0, :2], torch.tensor([1, 1]))
    assert not out.final_deltas[0, :2].any()
    out.slots.sum().backward()  # no NaN leaks from the discarded division by ~0
    assert torch.isfinite(vfn.scale.grad).all() and vfn.scale.grad[2:].abs().sum() > 0


def test_default_time_is_per_slot_and_custom_time_is_used():
    target = unit(1, 16, DIM, seed=1)
    start = unit(1, 16, DIM)
    target[:, :2] = start[:, :2]  # these converge after the first step
    vfn = TowardTarget(target)
    rar(start, torch.ones(1, 16, dtype=torch.bool), vfn, silent_attention(), RarConfig(max_iterations=10))
    (_, t0), (_, t1), (_, t2) = vfn.calls[:3]
    assert not t0.any() and torch.allclose(t1, torch.full((1, 16), 0.1, dtype=torch.float64))
    assert torch.allclose(t2[0, :2], torch.full((2,), 0.1, dtype=torch.float64))  # frozen slots' clocks stop
    assert torch.allclose(t2[0, 2:], torch.full((14,), 0.2, dtype=torch.float64))
    seen = []
    vfn = TowardTarget(target)
    rar(start, torch.ones(1, 16, dtype=torch.bool), vfn, silent_attention(), RarConfig(max_iterations=2),
        time=lambda step, iters: seen.append(step) or torch.full((1, 16), 0.7, dtype=torch.float64))
    assert seen == [0, 1] and all(torch.all(t == 0.7) for _, t in vfn.calls)


def test_differentiable_mode_keeps_the_graph_and_inference_does_not():
    torch.manual_seed(0)
    vfn, attn = Vfn(DIM, 32, time_conditioned=True), SlotAttention(DIM)
    slots = F.normalize(torch.randn(2, 16, DIM), dim=-1)
    active = torch.rand(2, 16) > 0.3
    config = RarConfig(max_iterations=4)
    out = rar(slots, active, vfn, attn, config)
    assert not out.slots.requires_grad
    trained = rar(slots, active, vfn, attn, config, differentiable=True)
    (trained.slots[active] - 1.0).pow(2).mean().backward()
    for p in (vfn.fc1.weight, vfn.time_proj.weight, attn.wq.weight, attn.wv.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert torch.allclose(trained.slots, out.slots)
    with torch.no_grad():
        assert torch.equal(rar(slots, active, vfn, attn, config).slots, out.slots)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="active"):
        rar(unit(1, 16, DIM), torch.ones(1, 15, dtype=torch.bool), TowardTarget(0), silent_attention())
    with pytest.raises(ValueError, match="sigma"):
        rar(unit(1, 16, DIM), torch.ones(1, 16, dtype=torch.bool), TowardTarget(0), silent_attention(),
            sigma=torch.ones(16))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_like_on_cpu():
    torch.manual_seed(0)
    vfn, attn = Vfn(DIM, 32, time_conditioned=True), SlotAttention(DIM)
    slots = F.normalize(torch.randn(3, 16, DIM), dim=-1)
    active = torch.rand(3, 16) > 0.3
    ghosts = F.normalize(torch.randn(3, 2, DIM), dim=-1)
    config = RarConfig(max_iterations=10)
    cpu = rar(slots, active, vfn, attn, config, bias=code_bias(), ghosts=ghosts)
    dev = torch.device("cuda")
    gpu = rar(slots.to(dev), active.to(dev), vfn.to(dev), attn.to(dev), config, bias=code_bias(), ghosts=ghosts.to(dev))
    assert torch.allclose(gpu.slots.cpu(), cpu.slots, atol=1e-4)
    assert torch.equal(gpu.iterations.cpu(), cpu.iterations)
    noisy = rar(slots.to(dev), active.to(dev), vfn, attn, config, sigma=torch.full((3, 16), 0.01, device=dev),
                generator=torch.Generator(device=dev).manual_seed(0))
    assert torch.isfinite(noisy.slots).all() and noisy.slots.device.type == "cuda"
