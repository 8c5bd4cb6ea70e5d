"""Vector field networks, slot identity head, and the frame energy head."""

import math

import pytest
import torch
from torch.nn import functional as F

from engine_support import one_thread  # noqa: F401  (a fixture: one intra-op thread for tiny tensors)
from voltx.engine.energy import EnergyHead, contrastive_energy_loss
from voltx.engine.vfn import ScaledVfn, SlotIdentityHead, Vfn, sinusoidal_time_features


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- Vfn / ScaledVfn ------------------------------------------------------------------------


def test_vfn_parameter_count_is_the_originals():
    assert parameter_count(Vfn()) == 525_568
    # The time projection: Linear(2 * 16 sinusoidal features, 512).
    assert parameter_count(Vfn(time_conditioned=True)) == 525_568 + 32 * 512 + 512 == 542_464


def test_scaled_vfn_parameter_count_and_names():
    with torch.device("meta"):  # 51.7M parameters counted without allocating 207 MB
        model = ScaledVfn()
    per_block = 2048 + 2 * (2048 * 2048 + 2048)
    expected = (128 * 2048 + 2048) + (256 * 2048 + 2048) + 6 * per_block + 2048 + (2048 * 256 + 256)
    assert expected == 51_685_632
    assert parameter_count(model) == expected
    names = set(model.state_dict())
    for name in ("time_proj.weight", "entry.bias", "block_0.norm.weight", "block_5.fc1.weight",
                 "block_5.fc2.bias", "final_norm.weight", "exit.weight"):
        assert name in names


def test_vfn_init_is_xavier_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = Vfn()
    for layer in (model.fc1, model.fc2, model.fc3):
        fan_out, fan_in = layer.weight.shape
        limit = math.sqrt(6 / (fan_in + fan_out))
        assert layer.weight.abs().max() <= limit
        assert layer.weight.std().item() == pytest.approx(limit / math.sqrt(3), rel=0.02)
        assert torch.count_nonzero(layer.bias) == 0


def test_vfn_keeps_shape_over_any_leading_dims():
    model = Vfn()
    assert model(torch.randn(3, 16, 256), torch.rand(3, 16)).shape == (3, 16, 256)
    assert model(torch.randn(2, 5, 7, 256)).shape == (2, 5, 7, 256)


def test_untimed_vfn_ignores_time():
    model = Vfn()
    x = torch.randn(2, 16, 256)
    assert torch.equal(model(x, torch.zeros(2, 16)), model(x, torch.rand(2, 16)))


def test_sinusoidal_features_have_no_two_pi():
    freqs = torch.logspace(0, 4, 64)
    feats = sinusoidal_time_features(torch.tensor([0.5]), freqs)
    assert feats.shape == (1, 128)
    assert freqs[0] == 1 and freqs[-1] == pytest.approx(1e4)
    assert feats[0, 0].item() == pytest.approx(math.sin(0.5))
    assert feats[0, 64].item() == pytest.approx(math.cos(0.5))
    assert feats[0, 63].item() == pytest.approx(math.sin(0.5 * 1e4), abs=1e-3)


@pytest.mark.parametrize("make", [lambda: Vfn(dim=32, hidden=64, time_conditioned=True),
                                  lambda: ScaledVfn(dim=32, hidden=64, blocks=2, time_freqs=8)],
                         ids=["Vfn", "ScaledVfn"])
def test_per_slot_time_changes_each_slots_drift(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(1, 1, 32).expand(2, 4, 32)  # the same vector in every slot
    t = torch.tensor([[0.0, 0.25, 0.5, 0.75]]).expand(2, 4)
    out = model(x, t)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.allclose(out[0, i], out[0, j])
    # Changing one slot's time changes that slot's drift and no other.
    t2 = t.clone()
    t2[:, 2] = 0.9
    out2 = model(x, t2)
    assert not torch.allclose(out2[:, 2], out[:, 2])
    assert torch.equal(out2[:, [0, 1, 3]], out[:, [0, 1, 3]])
    # A scalar / [B, 1] time broadcasts to every slot.
    assert torch.allclose(model(x, 0.5), model(x, torch.full((2, 1), 0.5)))
    with pytest.raises(ValueError, match="time"):
        model(x)


def test_scaled_vfn_matches_its_formula():
    torch.manual_seed(1)
    m = ScaledVfn(dim=8, hidden=16, blocks=2, time_freqs=4)
    for p in m.parameters():  # non-trivial norms and biases too
        p.data.normal_(0, 0.3)
    x, t = torch.randn(3, 8), torch.rand(3)
    freqs = torch.logspace(0, 4, 4)
    feats = torch.cat([torch.sin(t[:, None] * freqs), torch.cos(t[:, None] * freqs)], -1)

    def rms(h, w):
        return h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    h = F.gelu(x @ m.entry.weight.T + m.entry.bias) + F.gelu(feats @ m.time_proj.weight.T + m.time_proj.bias)
    for i in range(2):
        b = getattr(m, f"block_{i}")
        h = h + F.gelu(rms(h, b.norm.weight) @ b.fc1.weight.T + b.fc1.bias) @ b.fc2.weight.T + b.fc2.bias
    expected = rms(h, m.final_norm.weight) @ m.exit.weight.T + m.exit.bias
    assert torch.allclose(m(x, t), expected, atol=1e-5)


# --- slot identity head ----------------------------------------------------------------------


def test_slot_identity_head_learns_slot_types_and_masks_padding():
    torch.manual_seed(0)
    head = SlotIdentityHead()
    assert parameter_count(head) == 256 * 16 + 16
    prototypes = F.normalize(torch.randn(16, 256), dim=-1)
    types = torch.arange(16).expand(32, 16)
    mask = torch.rand(32, 16) > 0.3

    def batch():
        return F.normalize(prototypes + 0.5 * torch.randn(32, 16, 256) / 16, dim=-1)

    x = batch()
    assert head(x).shape == (32, 16, 16)
    # Masked-out positions carry no label: garbage there must not change the loss.
    garbage = torch.where(mask[..., None], x, torch.randn_like(x) * 100)
    assert head.loss(garbage, types, mask).item() == pytest.approx(head.loss(x, types, mask).item(), rel=1e-5)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        head.loss(batch(), types, mask).backward()
        opt.step()
    accuracy = (head(batch()).argmax(-1) == types).float().mean().item()
    assert accuracy > 0.95


# --- energy head -----------------------------------------------------------------------------


def _coherent_frames(n, generator, role_maps):
    """Frames whose active slots all derive from one latent per frame, each role via its own map."""
    z = torch.randn(n, 8, generator=generator)
    slots = F.normalize(torch.einsum("rdk,nk->nrd", role_maps, z), dim=-1)
    active = torch.zeros(n, 16, dtype=torch.bool)
    active[:, :9] = torch.rand(n, 9, generator=generator) < 0.7
    active[:, :3] = True  # agent, predicate, patient always present
    return slots * active[..., None], active


def _corrupted(pos: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Incoherent twins: the first half swap agent and patient (right words, wrong roles), the
    second half get a predicate turned by noise of its own norm (about 45 degrees)."""
    neg, half = pos.clone(), pos.shape[0] // 2
    neg[:half, [0, 2]] = pos[:half, [2, 0]]
    noise = F.normalize(torch.randn(pos.shape[0] - half, pos.shape[-1], generator=g), dim=-1)
    neg[half:, 1] = F.normalize(pos[half:, 1] + noise, dim=-1)
    return neg


def test_energy_head_learns_coherent_below_corrupted():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    role_maps = torch.zeros(16, 256, 8)
    role_maps[:9] = torch.randn(9, 256, 8, generator=g)
    head = EnergyHead(hidden=32)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    test_pos, test_active = _coherent_frames(512, g, role_maps)
    test_neg = _corrupted(test_pos, g)

    def ranked():
        with torch.no_grad():
            return head.energy(test_pos, test_active) < head.energy(test_neg, test_active)

    before = ranked().float().mean().item()
    for _ in range(200):
        pos, active = _coherent_frames(64, g, role_maps)
        neg = _corrupted(pos, g)
        energies = head(torch.cat([pos, neg]), torch.cat([active, active]))  # one pass for both
        loss = contrastive_energy_loss(energies[:64], energies[64:], margin=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ok = ranked()
    assert ok.float().mean().item() > 0.9 and before < 0.7
    assert ok[:256].float().mean() > 0.8 and ok[256:].float().mean() > 0.8  # swaps and turned predicates alike


def test_energy_handles_empty_frames_and_batch_independence():
    torch.manual_seed(0)
    head = EnergyHead(hidden=32)
    slots = torch.randn(3, 16, 256)
    active = torch.rand(3, 16) > 0.5
    active[1] = False
    e = head.energy(slots, active)
    assert e.shape == (3,) and torch.isfinite(e).all()
    assert torch.allclose(e[2], head.energy(slots[2:], active[2:])[0], atol=1e-6)
    # Inactive slot contents do not matter.
    noisy = torch.where(active[..., None], slots, torch.randn_like(slots))
    assert torch.allclose(head.energy(noisy, active), e, atol=1e-6)


def test_contrastive_energy_loss():
    e_pos, e_neg = torch.tensor([0.0, 0.0]), torch.tensor([2.0, 0.5])
    assert contrastive_energy_loss(e_pos, e_neg, margin=1.0).item() == pytest.approx(0.25)
    assert contrastive_energy_loss(e_pos, e_neg + 5, margin=1.0).item() == 0.0
    soft = contrastive_energy_loss(e_pos, e_neg, margin=1.0, kind="softplus").item()
    assert soft == pytest.approx((math.log1p(math.exp(-1)) + math.log1p(math.exp(0.5))) / 2)
    with pytest.raises(ValueError, match="hinge"):
        contrastive_energy_loss(e_pos, e_neg, kind="square")


def test_frame_context_lets_each_slot_read_the_rest_of_the_frame():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(2, 16, 8), dim=-1)
    other = x.clone()
    other[:, 5] = -other[:, 5]  # change one slot only
    plain = ScaledVfn(dim=8, hidden=16, blocks=1, time_freqs=4, roles=16)
    reading = ScaledVfn(dim=8, hidden=16, blocks=1, time_freqs=4, roles=16, frame_context=True)
    for vfn, moves in ((plain, False), (reading, True)):
        changed = (vfn(x, 0.0) - vfn(other, 0.0))[:, :5].abs().amax() > 1e-6  # the other slots' drifts
        assert bool(changed) == moves
    with pytest.raises(ValueError, match="roles"):
        ScaledVfn(dim=8, hidden=16, blocks=1, time_freqs=4, frame_context=True)


def test_memory_context_makes_the_drift_depend_on_what_was_read():
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(2, 16, 8), dim=-1)
    read = torch.nn.functional.normalize(torch.randn(2, 16, 8), dim=-1)
    vfn = ScaledVfn(dim=8, hidden=16, blocks=1, time_freqs=4, roles=16, frame_context=True, memory_context=True)
    assert (vfn(x, 0.0, read) - vfn(x, 0.0, torch.zeros_like(read))).abs().amax() > 1e-6
    assert torch.equal(vfn(x, 0.0), vfn(x, 0.0, None))  # no memory: the frame alone
    with pytest.raises(ValueError, match="frame_context"):
        ScaledVfn(dim=8, hidden=16, blocks=1, time_freqs=4, roles=16, memory_context=True)
