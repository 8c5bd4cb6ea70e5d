"""Safety: K1-K5 axioms, the monitor's verdicts and scores, the veto around a pipeline,
and refined axiom vectors saved and loaded."""

from __future__ import annotations

import logging
import re

import pytest
import torch
import torch.nn.functional as F

from voltx.engine.frame import MAX_SLOTS, TensorFrame
from voltx.engine.safety import SafetyLayer, SafetyLevel, SafetyMonitor, Severity, default_axioms
from voltx.engine.seeded import SEEDS, seeded_unit_vector
from voltx.errors import DataError

REASON = re.compile(r"^VIOLATION: axiom=(\w+), slot=S(\d+), similarity=(\d\.\d{4}), severity=(Halt|Warning), weighted=(\d\.\d{4})$")


def random_slots(batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(batch, MAX_SLOTS, 256, generator=g), dim=-1)


def frames(slots: torch.Tensor, active: torch.Tensor | None = None) -> TensorFrame:
    active = torch.ones(slots.shape[:2], dtype=torch.bool) if active is None else active
    return TensorFrame.from_r0(slots, torch.full(slots.shape[:2], 0.8), active)


def near(vector: torch.Tensor, cos: float, seed: int) -> torch.Tensor:
    """A unit vector at exactly cosine ``cos`` from unit ``vector``."""
    g = torch.Generator().manual_seed(seed)
    other = torch.randn(256, generator=g)
    other = F.normalize(other - (other @ vector) * vector, dim=0)
    return cos * vector + (1 - cos**2) ** 0.5 * other


def test_default_axioms_are_the_originals():
    axioms = default_axioms()
    assert [(a.name, a.threshold, a.severity) for a in axioms] == [
        ("K1_harm", 0.7, Severity.HALT), ("K2_deception", 0.7, Severity.HALT), ("K3_privacy", 0.7, Severity.HALT),
        ("K4_autonomy", 0.65, Severity.WARNING), ("K5_integrity", 0.7, Severity.HALT),
    ]
    for axiom, key in zip(axioms, ["K1", "K2", "K3", "K4", "K5"]):
        assert torch.equal(axiom.vector, seeded_unit_vector(SEEDS[key]))


def test_axiom_vector_in_a_slot_halts_with_the_logged_reason():
    slots = random_slots(2, 0)
    slots[1, 3] = seeded_unit_vector(SEEDS["K1"])
    slots[1, 7] = near(seeded_unit_vector(SEEDS["K3"]), 0.8, seed=1)  # near an axiom, above 0.7
    verdicts = SafetyMonitor().check_frame(frames(slots))
    assert verdicts[0].level is SafetyLevel.PASS and verdicts[0].violations == () and verdicts[0].aggregate == 0.0
    v = verdicts[1]
    assert v.level is SafetyLevel.HALT and v.halted
    found = {(x.axiom, x.slot) for x in v.violations}
    assert found == {("K1_harm", 3), ("K3_privacy", 7)}
    k1 = next(x for x in v.violations if x.axiom == "K1_harm")
    assert k1.similarity == pytest.approx(1.0, abs=1e-5) and k1.weighted == pytest.approx(1.0, abs=1e-5)
    k3 = next(x for x in v.violations if x.axiom == "K3_privacy")
    assert k3.similarity == pytest.approx(0.8, abs=1e-4)
    assert v.aggregate == pytest.approx(1.0, abs=1e-5)
    m = REASON.match(v.reason())
    assert m and m.groups() == ("K1_harm", "3", "1.0000", "Halt", "1.0000")


def test_threshold_is_strict_and_inactive_slots_are_ignored():
    k2 = seeded_unit_vector(SEEDS["K2"])
    slots = random_slots(3, 2)
    slots[0, 0] = near(k2, 0.69, seed=3)      # just below 0.7
    slots[1, 0] = near(k2, 0.71, seed=3)      # just above
    slots[2, 5] = k2                           # the axiom itself, but the slot is inactive
    active = torch.ones(3, MAX_SLOTS, dtype=torch.bool)
    active[2, 5] = False
    levels = [v.level for v in SafetyMonitor().check(slots, active)]
    assert levels == [SafetyLevel.PASS, SafetyLevel.HALT, SafetyLevel.PASS]


def test_k4_only_warns_and_never_blocks():
    slots = random_slots(1, 4)
    slots[0, 2] = near(seeded_unit_vector(SEEDS["K4"]), 0.9, seed=5)
    layer = SafetyLayer()
    calls = []

    def pipeline(f):
        calls.append(f.batch_size)
        return f

    result = layer.run(frames(slots), pipeline)
    assert calls == [1]
    (before,) = result.before
    assert before.level is SafetyLevel.WARNING and not before.halted and before.reason() is None
    (w,) = before.violations
    assert (w.axiom, w.slot, w.severity) == ("K4_autonomy", 2, Severity.WARNING)
    assert w.weighted == pytest.approx(0.5 * w.similarity) and before.aggregate == pytest.approx(0.45, abs=1e-4)
    assert result.vetoed == [False] and result.warnings == [True]
    assert torch.equal(result.frame.data, frames(slots).data)


def test_random_frames_pass():
    f = frames(random_slots(8, 6))
    assert all(v.level is SafetyLevel.PASS for v in SafetyMonitor().check_frame(f))
    result = SafetyLayer().run(f, lambda x: x)
    assert result.vetoed == [False] * 8 and result.reasons == [None] * 8


def test_pre_check_halt_vetoes_without_running_the_pipeline(caplog):
    slots = random_slots(3, 7)
    slots[1, 4] = seeded_unit_vector(SEEDS["K5"])
    seen = []

    def pipeline(f):
        seen.append(f.r0().clone())
        out = f.clone()
        out.certainty[:] = 0.9
        return out, [f"proof of {i}" for i in range(f.batch_size)]

    with caplog.at_level(logging.WARNING, logger="voltx.safety"):
        result = SafetyLayer().run(frames(slots), pipeline)
    assert len(seen) == 1 and torch.equal(seen[0], slots[[0, 2]])  # only the clean frames went in
    assert result.vetoed == [False, True, False]
    assert REASON.match(result.reasons[1]).group(1, 2) == ("K5_integrity", "4")
    assert result.reasons[1] in caplog.text
    assert result.after[1] is None and result.proofs == ["proof of 0", None, "proof of 1"]
    out = result.frame
    assert out.batch_size == 3
    assert not out.mask[1].any() and out.certainty[1].eq(0).all() and out.meta[1].verified is False
    assert torch.equal(out.r0()[[0, 2]], slots[[0, 2]]) and out.certainty[[0, 2]].eq(0.9).all()  # order kept

    called = []
    single = SafetyLayer().run(frames(slots[1:2]), lambda f: called.append(1) or f)
    assert called == [] and single.vetoed == [True]


def test_post_check_halt_vetoes_the_output_but_keeps_the_proof():
    k1 = seeded_unit_vector(SEEDS["K1"])

    def pipeline(f):
        out = f.clone()
        out.data[0, 9, 0] = k1  # the pipeline produced something harmful in frame 0
        return out, ["routed to x", "routed to y"]

    result = SafetyLayer().run(frames(random_slots(2, 8)), pipeline)
    assert result.vetoed == [True, False]
    assert result.before[0].level is SafetyLevel.PASS and result.after[0].halted
    assert REASON.match(result.reasons[0]).group(1, 2) == ("K1_harm", "9")
    assert result.proofs == ["routed to x", "routed to y"]
    assert not result.frame.mask[0].any() and result.frame.mask[1, :, 0].all()


def test_refined_vectors_save_and_load(tmp_path):
    g = torch.Generator().manual_seed(9)
    refined = SafetyMonitor().with_vectors(torch.randn(5, 256, generator=g))
    path = refined.save(tmp_path / "axioms.safetensors")
    back = SafetyMonitor.load(path)
    assert back.names == refined.names
    assert torch.equal(back.vectors, refined.vectors) and torch.equal(back.thresholds, refined.thresholds)
    assert [a.severity for a in back.axioms] == [a.severity for a in refined.axioms]
    slots = random_slots(1, 10)
    slots[0, 0] = refined.vectors[0]
    assert back.check_frame(frames(slots))[0].halted  # the refined K1 is what is checked now
    assert not SafetyMonitor().check_frame(frames(slots))[0].halted
    with pytest.raises(ValueError, match=r"expected \[5, D\]"):
        SafetyMonitor().with_vectors(torch.randn(4, 256))
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.safetensors"):
        SafetyMonitor.load(tmp_path / "junk.safetensors")
