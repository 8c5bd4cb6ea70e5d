"""TensorFrame: layout validation, single-row ops, merge rules, certainty, normalisation, files."""

import dataclasses
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from voltx.engine.frame import (
    MAX_SLOTS,
    NUM_RESOLUTIONS,
    ROLE_NAMES,
    SLOT_DIM,
    Discourse,
    FrameError,
    FrameMeta,
    SlotRole,
    Source,
    TensorFrame,
)
from voltx.errors import MissingInputError

D = 8  # a small slot dim keeps the tests fast; SLOT_DIM is checked separately


def vec(value: float, d: int = D) -> torch.Tensor:
    return torch.full((d,), float(value))


def fields(frame: TensorFrame) -> dict:
    return {f.name: getattr(frame, f.name) for f in dataclasses.fields(frame)}


def test_enums_and_constants():
    assert (MAX_SLOTS, NUM_RESOLUTIONS, SLOT_DIM) == (16, 4, 256)
    assert SlotRole.AGENT == 0 and SlotRole.RESULT == 8 and SlotRole.FREE0 == 9 and SlotRole.FREE6 == 15
    assert [s.name for s in Source] == ["EMPTY", "TRANSLATOR", "SOFT_CORE", "HARD_CORE", "MEMORY", "PERSONAL"]
    assert [d.value for d in Discourse] == list(range(6)) and Discourse.UNKNOWN == 5
    assert ROLE_NAMES[0] == "Agent" and ROLE_NAMES[8] == "Result" and ROLE_NAMES[15] == "Free6"
    assert FrameError("x").exit_code == 65


def test_empty_frame_layout():
    f = TensorFrame.empty(3)
    assert f.batch_size == 3 and f.slot_dim == SLOT_DIM
    expected = {
        "data": ((3, 16, 4, 256), torch.float32), "mask": ((3, 16, 4), torch.bool),
        "certainty": ((3, 16), torch.float32), "role": ((3, 16), torch.int64),
        "source": ((3, 16), torch.int64), "needs_verify": ((3, 16), torch.bool),
    }
    for name, (shape, dtype) in expected.items():
        t = getattr(f, name)
        assert (tuple(t.shape), t.dtype) == (shape, dtype), name
    assert (f.role == torch.arange(16)).all() and (f.source == Source.EMPTY).all()
    assert not f.active_slots().any() and len(f.meta) == 3 and f.meta[0] is not f.meta[1]
    assert f.meta[0].discourse is Discourse.UNKNOWN and f.meta[0].created_at > 1_600_000_000_000_000


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("data", torch.zeros(2, 16, D), r"TensorFrame.data: expected \[B, 16, 4, D\], got \[2, 16, 8\]"),
        ("data", torch.zeros(2, 16, 3, D), r"TensorFrame.data: expected shape \[2, 16, 4, 8\], got \[2, 16, 3, 8\]"),
        ("data", torch.zeros(2, 16, 4, D, dtype=torch.double), "data: expected dtype torch.float32, got torch.float64"),
        ("mask", torch.zeros(2, 16, 3, dtype=torch.bool), r"mask: expected shape \[2, 16, 4\], got \[2, 16, 3\]"),
        ("mask", torch.zeros(2, 16, 4), "mask: expected dtype torch.bool, got torch.float32"),
        ("certainty", torch.zeros(3, 16), r"certainty: expected shape \[2, 16\], got \[3, 16\]"),
        ("role", torch.zeros(2, 16, dtype=torch.int32), "role: expected dtype torch.int64"),
        ("source", torch.zeros(2, 16, dtype=torch.long, device="meta"), "source: expected device cpu"),
        ("needs_verify", [False] * 16, "needs_verify: expected a tensor"),
        ("meta", [FrameMeta()], "meta: expected a list of 2 FrameMeta, got 1"),
        ("meta", [FrameMeta(), {}], "meta: expected FrameMeta items"),
    ],
)
def test_constructor_validation_names_field_expected_and_got(field, value, message):
    kwargs = fields(TensorFrame.empty(2, dim=D))
    kwargs[field] = value
    with pytest.raises(FrameError, match=message):
        TensorFrame(**kwargs)


def test_write_read_clear():
    f = TensorFrame.empty(2, dim=D)
    assert f.read(3, 1) is None
    f.write(3, 1, vec(0.5), role=SlotRole.PATIENT, certainty=0.7, source=Source.HARD_CORE)
    f.write(3, 2, vec(2.0), role=SlotRole.TIME)  # role ignored: the slot already exists
    assert torch.equal(f.read(3, 1), vec(0.5)) and torch.equal(f.read(3, 2), vec(2.0))  # never normalised
    assert f.read(3, 0) is None and f.read(3, 1, b=1) is None
    assert f.role[0, 3] == SlotRole.PATIENT and f.certainty[0, 3] == pytest.approx(0.7)
    assert f.source[0, 3] == Source.HARD_CORE
    assert f.active_slots()[0].tolist() == [i == 3 for i in range(16)]
    assert torch.equal(f.at(1)[0, 3], vec(0.5)) and torch.equal(f.r0(), f.data[:, :, 0])
    f.write(5, 0, vec(1.0), b=1)  # defaults: role stays the slot index, gamma/source untouched
    assert f.role[1, 5] == 5 and f.certainty[1, 5] == 0 and f.active_slots()[1, 5]
    got = f.read(3, 1)
    got.zero_()  # read returns a copy
    assert torch.equal(f.read(3, 1), vec(0.5))
    f.clear(3)
    assert f.read(3, 1) is None and not f.mask[0, 3].any() and (f.data[0, 3] == 0).all()
    assert (f.certainty[0, 3], f.role[0, 3], f.source[0, 3]) == (0, 3, Source.EMPTY)
    assert f.active_slots()[1, 5]  # other row untouched


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda f: f.write(16, 0, vec(1)), "slot must be an integer in 0..15, got 16"),
        (lambda f: f.write(-1, 0, vec(1)), "slot must be an integer in 0..15, got -1"),
        (lambda f: f.write(0, 4, vec(1)), "res must be an integer in 0..3, got 4"),
        (lambda f: f.read(0, -1), "res must be an integer in 0..3"),
        (lambda f: f.read(0, 0, b=2), r"b \(batch row\) must be an integer in 0..1, got 2"),
        (lambda f: f.clear(16), "slot must be an integer in 0..15"),
        (lambda f: f.write(1.0, 0, vec(1)), "slot must be an integer in 0..15, got 1.0"),
        (lambda f: f.at(4), "res must be an integer in 0..3"),
        (lambda f: f.write(0, 0, vec(1, d=D + 1)), r"write vec: expected shape \[8\], got \[9\]"),
        (lambda f: f.write(0, 0, vec(1), certainty=1.5), r"certainty: expected a value in \[0, 1\]"),
        (lambda f: f.write(0, 0, vec(1), role=16), "16 is not a valid SlotRole"),
        (lambda f: f.write(0, 0, vec(1), source=9), "9 is not a valid Source"),
    ],
)
def test_range_checks(call, message):
    f = TensorFrame.empty(2, dim=D)
    with pytest.raises(FrameError, match=message):
        call(f)
    assert not f.mask.any()  # a rejected write changes nothing


def test_global_certainty_min_rule():
    f = TensorFrame.empty(3, dim=D)
    f.write(0, 0, vec(1), certainty=0.9)
    f.write(4, 2, vec(1), certainty=0.4)
    f.certainty[0, 7] = 0.1  # gamma on an empty slot does not count
    f.write(2, 0, vec(1), b=1, certainty=0.6)
    assert torch.allclose(f.global_certainty(), torch.tensor([0.4, 0.6, 0.0]))  # row 2: no active slots


def test_merge_rules():
    left, right = TensorFrame.empty(2, dim=D), TensorFrame.empty(2, dim=D)
    left.write(0, 0, vec(1), certainty=0.9, source=Source.TRANSLATOR)  # self higher: self
    right.write(0, 0, vec(2), certainty=0.7)
    left.write(1, 0, vec(1), certainty=0.5)  # tie: self
    right.write(1, 0, vec(2), certainty=0.5)
    left.write(2, 0, vec(1), certainty=0.3)  # other higher: the whole slot moves
    left.write(2, 1, vec(1))
    right.write(2, 2, vec(2), certainty=0.8, role=SlotRole.CAUSE, source=Source.HARD_CORE)
    right.needs_verify[0, 2] = True
    right.write(3, 0, vec(2), certainty=0.0)  # only other active: other, even at gamma 0
    left.write(4, 0, vec(1), certainty=0.2)  # only self active: self
    right.certainty[0, 4] = 0.9  # a stray gamma on an empty slot does not make it win
    right.write(0, 0, vec(2), b=1, certainty=1.0)  # row 1 decided on its own
    m = left.merge(right)
    assert [float(m.data[0, s, :, 0].abs().sum()) for s in range(5)] == [1.0, 1.0, 2.0, 2.0, 1.0]
    assert m.mask[0, 2].tolist() == [False, False, True, False]  # R0/R1 of the loser are gone
    assert (m.role[0, 2], m.source[0, 2], bool(m.needs_verify[0, 2])) == (SlotRole.CAUSE, Source.HARD_CORE, True)
    assert m.source[0, 0] == Source.TRANSLATOR
    assert torch.allclose(m.certainty[0, :5], torch.tensor([0.9, 0.5, 0.8, 0.0, 0.2]))
    assert not m.active_slots()[0, 5:].any()
    assert torch.equal(m.read(0, 0, b=1), vec(2)) and m.active_slots()[1].sum() == 1
    assert float(m.global_certainty()[0]) == 0.0 and float(m.global_certainty()[1]) == 1.0
    assert torch.equal(left.read(2, 1), vec(1))  # inputs untouched


def test_merge_meta_and_mismatch():
    left, right = TensorFrame.empty(1, dim=D), TensorFrame.empty(1, dim=D)
    left.meta[0] = FrameMeta(frame_id=7, strand_id=3, discourse=Discourse.QUERY, created_at=1,
                             rar_iterations=2, verified=True, proof_length=1)
    right.meta[0] = FrameMeta(frame_id=8, strand_id=9, discourse=Discourse.COMMAND, created_at=1,
                              rar_iterations=5, verified=True, proof_length=4)
    meta = left.merge(right).meta[0]
    assert (meta.frame_id, meta.strand_id, meta.discourse) == (0, 3, Discourse.QUERY)
    assert (meta.rar_iterations, meta.verified, meta.proof_length) == (7, False, 4)
    assert meta.created_at > 1_600_000_000_000_000
    with pytest.raises(FrameError, match=r"merge: frames differ: \[1, 16, 4, 8\] on cpu vs \[2, 16, 4, 8\]"):
        left.merge(TensorFrame.empty(2, dim=D))


def test_normalized():
    f = TensorFrame.empty(2, dim=D)
    f.write(0, 0, vec(3.0))
    f.write(0, 1, torch.arange(1.0, D + 1))
    f.write(9, 3, vec(-0.5), b=1)
    n = f.normalized()
    norms = n.data.norm(dim=-1)
    assert torch.allclose(norms[n.mask], torch.ones(3)) and (norms[~n.mask] == 0).all()
    assert torch.allclose(n.read(0, 0), vec(1.0 / D**0.5))
    assert torch.equal(f.read(0, 0), vec(3.0))  # a new frame; the original is unchanged
    f.write(5, 2, torch.zeros(D), b=1)
    with pytest.raises(FrameError, match="row 1, slot 5, resolution 2: L2 norm 0 is below 1e-10"):
        f.normalized()
    for bad in (float("nan"), float("inf")):
        g = TensorFrame.empty(1, dim=D)
        g.write(0, 0, vec(1.0))
        g.write(0, 1, torch.full((D,), bad))
        with pytest.raises(FrameError, match="slot 0, resolution 1"):
            g.normalized()


def test_from_r0_clone_to():
    slots = torch.randn(2, 16, D)
    active = torch.zeros(2, 16, dtype=torch.bool)
    active[0, [1, 4]] = True
    f = TensorFrame.from_r0(slots, torch.full((2, 16), 0.5), active)
    assert f.source[0].tolist() == [Source.TRANSLATOR if i in (1, 4) else Source.EMPTY for i in range(16)]
    assert torch.equal(f.r0()[0, 1], slots[0, 1]) and (f.r0()[1] == 0).all() and f.certainty[1].sum() == 0
    assert TensorFrame.from_r0(slots, torch.ones(2, 16), active, source=Source.SOFT_CORE).source[0, 1] == 2
    with pytest.raises(FrameError, match=r"from_r0: expected slots \[B, 16, D\].*got \[2, 15, 8\]"):
        TensorFrame.from_r0(torch.zeros(2, 15, D), torch.ones(2, 15), torch.ones(2, 15))
    with pytest.raises(FrameError, match=r"got \[2, 16, 8\], \[2, 15\], \[2, 16\]"):
        TensorFrame.from_r0(slots, torch.ones(2, 15), active)
    c = f.clone()
    c.write(0, 0, vec(1))
    c.meta[0].frame_id = 42
    assert f.read(0, 0) is None and f.meta[0].frame_id == 0
    moved = f.to("cpu")
    assert torch.equal(moved.data, f.data) and moved.meta == f.meta and moved.meta[0] is not f.meta[0]


def sample_frame() -> TensorFrame:
    f = TensorFrame.empty(2, dim=D)
    f.write(0, 0, torch.randn(D), certainty=0.25, source=Source.MEMORY, role=SlotRole.AGENT)
    f.write(6, 2, torch.randn(D), b=1, certainty=1.0, source=Source.HARD_CORE, role=SlotRole.FREE3)
    f.needs_verify[1, 6] = True
    f.meta[1] = FrameMeta(frame_id=2**63, strand_id=5, discourse=Discourse.CREATIVE, created_at=123,
                          rar_iterations=9, verified=True, proof_length=3)
    return f


def test_save_load_round_trip(tmp_path):
    f = sample_frame()
    path = tmp_path / "frames.safetensors"
    f.save(path)
    g = TensorFrame.load(path)
    for name, value in fields(f).items():
        if name == "meta":
            assert g.meta == f.meta and g.meta[1].discourse is Discourse.CREATIVE
        else:
            assert torch.equal(getattr(g, name), value) and getattr(g, name).dtype == value.dtype, name
    with safe_open(str(path), framework="pt") as fh:  # plain safetensors: meta is JSON in the header
        assert set(fh.keys()) == {"data", "mask", "certainty", "role", "source", "needs_verify"}
        assert json.loads(fh.metadata()["voltx.frame.meta"])[1]["discourse"] == Discourse.CREATIVE
    assert not list(tmp_path.glob("*.tmp"))


def _resave(tmp_path, f: TensorFrame, drop=None, replace=None, meta=None):
    tensors = {k: v.contiguous() for k, v in fields(f).items() if k != "meta" and k != drop}
    tensors.update(replace or {})
    header = {"voltx.frame.meta": json.dumps([m.to_json() for m in f.meta]) if meta is None else meta}
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path), metadata=header)
    return path


@pytest.mark.parametrize(
    "kind,message",
    [
        ("missing tensor", "missing tensor\\(s\\) needs_verify"),
        ("wrong shape", r"TensorFrame.mask: expected shape \[2, 16, 4\], got \[2, 16, 3\]"),
        ("bad meta json", "bad or missing 'voltx.frame.meta'"),
        ("bad meta field", "bad or missing 'voltx.frame.meta'"),
        ("meta count", r"meta: expected a list of 2 FrameMeta, got 1"),
        ("garbage", "not a readable safetensors frame file"),
    ],
)
def test_load_rejects_bad_files(tmp_path, kind, message):
    f = sample_frame()
    if kind == "missing tensor":
        path = _resave(tmp_path, f, drop="needs_verify")
    elif kind == "wrong shape":
        path = _resave(tmp_path, f, replace={"mask": torch.zeros(2, 16, 3, dtype=torch.bool)})
    elif kind == "bad meta json":
        path = _resave(tmp_path, f, meta="[{not json")
    elif kind == "bad meta field":
        path = _resave(tmp_path, f, meta=json.dumps([{**m.to_json(), "discourse": 9} for m in f.meta]))
    elif kind == "meta count":
        path = _resave(tmp_path, f, meta=json.dumps([f.meta[0].to_json()]))
    else:
        path = tmp_path / "bad.safetensors"
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    with pytest.raises(FrameError, match=message) as info:
        TensorFrame.load(path)
    assert str(path) in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(MissingInputError, match="no such frame file"):
        TensorFrame.load(tmp_path / "nope.safetensors")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip(tmp_path):
    f = sample_frame()
    g = f.to("cuda")
    assert g.data.device.type == "cuda" and g.role.device.type == "cuda"
    merged = g.merge(TensorFrame.empty(2, "cuda", dim=D))
    assert torch.equal(merged.data.cpu(), f.data) and torch.allclose(g.global_certainty().cpu(), f.global_certainty())
    g.save(tmp_path / "f.safetensors")  # saved from the GPU, loaded where asked
    back = TensorFrame.load(tmp_path / "f.safetensors", device="cuda")
    assert back.data.device.type == "cuda" and torch.equal(back.data.cpu(), f.data) and back.meta == f.meta
