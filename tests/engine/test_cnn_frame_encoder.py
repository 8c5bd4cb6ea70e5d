"""CnnFrameEncoder: parameter count, output shapes, padding invariance, frame construction."""

import dataclasses

import pytest
import torch

from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.frame import MAX_SLOTS, NUM_RESOLUTIONS, ROLE_NAMES, TensorFrame
from voltx.engine.tokenizer import PAD_ID


@pytest.fixture(autouse=True)
def single_thread():
    # Tiny models gain nothing from intra-op threads, and on a busy 2-core machine an
    # OpenMP barrier waiting for a descheduled thread made one test 30x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return CnnFrameEncoder().eval()


def test_param_count_matches_original(encoder):
    expected = (
        32768 * 128
        + (128 * 256 * 3 + 256)
        + (256 * 256 * 5 + 256)
        + (256 * 256 * 7 + 256)
        + (256 * 16 + 16)
        + (256 * 256 + 256)
    )
    assert expected == 5_149_712
    assert sum(p.numel() for p in encoder.parameters()) == expected


def test_shapes_and_frame(encoder):
    ids = torch.randint(4, 32768, (3, 11))
    mask = torch.ones(3, 11, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, :] = False  # an all-padding row
    ids[~mask] = PAD_ID
    out = encoder(ids, mask)
    assert out.features.shape == (3, 11, 256)
    assert out.role_logits.shape == (3, 11, 16)
    assert out.token_embeds.shape == (3, 11, 256)
    assert out.summary.shape == (3, 256)
    assert torch.allclose(out.summary[:2].norm(dim=-1), torch.ones(2), atol=1e-5)
    assert (out.summary[2] == 0).all()
    frame = encoder.to_frame(out, mask)
    assert isinstance(frame, TensorFrame) and frame.batch_size == 3
    assert frame.data.shape == (3, MAX_SLOTS, NUM_RESOLUTIONS, 256)
    assert not frame.mask[:, :, 1:3].any() and (frame.data[:, :, 1:3] == 0).all()  # R0 and R3 filled
    assert torch.equal(frame.mask[:, :, 3], frame.mask[:, :, 0])
    r3 = frame.data[:, :, 3]
    assert torch.allclose(r3[frame.mask[:, :, 3]].norm(dim=-1), torch.ones(int(frame.mask[:, :, 3].sum())), atol=1e-5)
    active = frame.active_slots()
    assert active[0].any() and not active[2].any()
    norms = frame.r0().norm(dim=-1)
    assert torch.allclose(norms[active], torch.ones(int(active.sum())), atol=1e-5)
    assert (norms[~active] == 0).all()
    assert ((frame.certainty >= 0) & (frame.certainty <= 1)).all()
    assert (frame.certainty[~active] == 0).all()
    slots, slot_active = encoder.slot_context(out, mask)
    assert torch.equal(slots, frame.r0()) and torch.equal(slot_active, active)
    assert not torch.isnan(frame.data).any()
    assert len(ROLE_NAMES) == 16 and ROLE_NAMES[0] == "Agent" and ROLE_NAMES[-1] == "Free6"


def test_padding_invariance(encoder):
    torch.manual_seed(1)
    sentence = torch.randint(4, 32768, (9,))
    outs, frames = [], []
    for width in (9, 14, 40):
        ids = torch.full((2, width), PAD_ID)
        mask = torch.zeros(2, width, dtype=torch.bool)
        ids[0, :9], mask[0, :9] = sentence, True
        ids[1, :], mask[1, :] = torch.randint(4, 32768, (width,)), True  # the long row that forces padding
        out = encoder(ids, mask)
        outs.append(out)
        frames.append(encoder.to_frame(out, mask))
    for out, frame in zip(outs[1:], frames[1:]):
        assert torch.allclose(out.summary[0], outs[0].summary[0], atol=1e-5)
        assert torch.allclose(out.features[0, :9], outs[0].features[0, :9], atol=1e-5)
        assert torch.equal(frame.mask[0], frames[0].mask[0])
        assert torch.allclose(frame.data[0], frames[0].data[0], atol=1e-5)
        assert torch.allclose(frame.certainty[0], frames[0].certainty[0], atol=1e-5)
        assert (out.features[0, 9:] == 0).all()


def test_mask_defaults_to_non_pad_and_length_limit():
    enc = CnnFrameEncoder(vocab_size=50, max_seq_len=8)
    ids = torch.tensor([[5, 6, 7, PAD_ID]])
    a = enc(ids)
    b = enc(ids, ids.ne(PAD_ID))
    assert torch.equal(a.summary, b.summary)
    with pytest.raises(ValueError, match="max_seq_len"):
        enc(torch.ones(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="num_roles"):
        CnnFrameEncoder(vocab_size=50, num_roles=8)


def test_role_threshold_controls_activity():
    torch.manual_seed(0)
    enc = CnnFrameEncoder(vocab_size=50, role_threshold=0.5)
    ids = torch.tensor([[5, 6]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    logits = torch.zeros(1, 2, 16)
    logits[0, :, 3] = 20.0  # both tokens almost surely in slot 3
    out = dataclasses.replace(enc(ids, mask), role_logits=logits)
    frame = enc.to_frame(out, mask)
    assert frame.active_slots()[0].tolist() == [i == 3 for i in range(16)]
    assert frame.certainty[0, 3] == pytest.approx(1.0)
