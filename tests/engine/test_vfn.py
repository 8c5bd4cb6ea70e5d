"""Vector field networks, slot identity head, and the frame energy head."""

import math

import pytest
import torch
from torch.nn import functional as F

from voltx.engine.energy import (
    CORRUPTION_KINDS,
    EnergyHead,
    contrastive_energy_loss,
    corrupt_frames,
)
from voltx.engine.vfn import ScaledVfn, SlotIdentityHead, Vfn, parameter_count, sinusoidal_time_features


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, and steady on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def test_energy_head_learns_coherent_below_corrupted():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    role_maps = torch.zeros(16, 256, 8)
    role_maps[:9] = torch.randn(9, 256, 8, generator=g)
    head = EnergyHead(hidden=32)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    test_pos, test_active = _coherent_frames(512, g, role_maps)
    test_neg = corrupt_frames(test_pos, test_active, g)

    def ranked():
        with torch.no_grad():
            return head.energy(test_pos, test_active) < head.energy(test_neg.slots, test_active)

    before = ranked().float().mean().item()
    for _ in range(200):
        pos, active = _coherent_frames(64, g, role_maps)
        neg = corrupt_frames(pos, active, g).slots
        energies = head(torch.cat([pos, neg]), torch.cat([active, active]))  # one pass for both
        loss = contrastive_energy_loss(energies[:64], energies[64:], margin=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    ok = ranked()
    assert ok.float().mean().item() > 0.9 and before < 0.7
    for kind in ("swap", "noise", "zero"):
        rows = test_neg.kind == CORRUPTION_KINDS.index(kind)
        assert rows.sum() > 50 and ok[rows].float().mean() > 0.8, kind


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


def test_corrupt_frames_kinds():
    g = torch.Generator().manual_seed(3)
    slots = F.normalize(torch.randn(400, 16, 256, generator=g), dim=-1)
    active = torch.rand(400, 16, generator=g) < 0.5
    active[0] = False
    active[1] = False
    active[1, 4] = True  # a single active slot: a swap falls back to noise
    slots = slots * active[..., None]
    out, kind = corrupt_frames(slots, active, torch.Generator().manual_seed(9), kinds=("swap", "noise", "zero"))
    again = corrupt_frames(slots, active, torch.Generator().manual_seed(9), kinds=("swap", "noise", "zero"))
    assert torch.equal(out, again.slots) and torch.equal(kind, again.kind)
    assert kind[0] == -1 and torch.equal(out[0], slots[0])
    assert kind[1] != CORRUPTION_KINDS.index("swap")
    changed = (out != slots).any(-1)
    assert not (changed & ~active).any()  # inactive slots never touched
    for row in range(2, 400):
        name = CORRUPTION_KINDS[kind[row]]
        idx = changed[row].nonzero().flatten().tolist()
        if name == "swap":
            i, j = idx
            assert torch.equal(out[row, i], slots[row, j]) and torch.equal(out[row, j], slots[row, i])
        else:
            assert len(idx) == 1
            if name == "zero":
                assert torch.count_nonzero(out[row, idx[0]]) == 0
            else:  # norm kept, direction turned by noise of the slot's own norm (~45 degrees)
                new, old = out[row, idx[0]], slots[row, idx[0]]
                assert new.norm().item() == pytest.approx(1.0, rel=1e-5)
                assert 0.5 < F.cosine_similarity(new, old, dim=0).item() < 0.9
    assert set(kind[2:].tolist()) == {0, 1, 2}
    foreign = corrupt_frames(slots, active, g, kinds=("foreign",))
    assert (foreign.kind[2:] == CORRUPTION_KINDS.index("foreign")).all()
    for row in (5, 6, 7):
        (i,) = (foreign.slots[row] != slots[row]).any(-1).nonzero().flatten().tolist()
        assert torch.equal(foreign.slots[row, i], slots[row - 1, i])  # the previous frame's slot
    with pytest.raises(ValueError, match="unknown"):
        corrupt_frames(slots, active, g, kinds=("shuffle",))
