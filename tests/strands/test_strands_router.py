"""Hard Strands through their typed APIs and the frame protocol, and the intent router."""

from __future__ import annotations

import math

import pytest
import torch

from voltx.engine import hdc
from voltx.engine.frame import TensorFrame
from voltx.engine.router import IntentRouter
from voltx.engine.seeded import SEEDS, seeded_unit_vector
from voltx.engine.strands import StrandError, read_text, write_text
from voltx.engine.stub_translator import StubTranslator
from voltx.plugins import load_plugins
from voltx_plugins.strands.hdc_algebra import HDCAlgebra
from voltx_plugins.strands.math_engine import MathEngine


def math_frame(code: float, left: float, right: float) -> TensorFrame:
    frame = TensorFrame.empty(1)
    frame.write(1, 0, seeded_unit_vector(SEEDS["math_engine"]), certainty=0.9)
    ops = torch.zeros(256)
    ops[:3] = torch.tensor([code, left, right])
    frame.write(6, 0, ops, certainty=1.0)
    return frame


@pytest.mark.parametrize("op,left,right,expected", [
    ("add", 3, 4, 7), ("sub", 3, 4, -1), ("mul", 2.5, 4, 10), ("div", 1, 3, 1 / 3), ("pow", 2, 10, 1024),
    ("sqrt", 16, None, 4), ("abs", -3, None, 3), ("neg", 5, None, -5), ("+", 1, 2, 3), ("**", 3, 2, 9),
])
def test_math_engine_typed_api(op, left, right, expected):
    assert math.isclose(MathEngine().compute(op, left, right).value, expected)


@pytest.mark.parametrize("op,left,right,needle", [("div", 1, 0, "division by zero"), ("sqrt", -1, None, "sqrt"), ("frobnicate", 1, 2, "unknown math operation"), ("add", 1, None, "two operands")])
def test_math_engine_errors(op, left, right, needle):
    with pytest.raises(StrandError, match=needle):
        MathEngine().compute(op, left, right)


def test_math_engine_frame_protocol_writes_result_slot():
    frame = math_frame(3, 6, 7)
    result = MathEngine().process(frame, 0)
    out = frame.read(8, 0)
    assert result.activated and float(out[0]) == 42 and float(out[1]) == 1.0
    assert float(frame.certainty[0, 8]) == 1.0 and frame.meta[0].verified and frame.meta[0].proof_length == 1


def test_hdc_strand_bind_and_similarity_through_frame():
    a, b = seeded_unit_vector(1), seeded_unit_vector(2)
    frame = TensorFrame.empty(1)
    frame.write(0, 0, a)
    frame.write(2, 0, b)
    frame.write(6, 0, torch.tensor([11.0, 0, 2, 0] + [0.0] * 252))
    HDCAlgebra().process(frame, 0)
    assert torch.allclose(frame.read(8, 0), hdc.bind(a, b), atol=1e-6)
    frame.write(6, 0, torch.tensor([15.0, 0, 2, 0] + [0.0] * 252))
    HDCAlgebra().process(frame, 0)
    assert math.isclose(float(frame.read(8, 0)[0]), float(hdc.similarity(a, b)), abs_tol=1e-6)
    with pytest.raises(StrandError, match="unknown HDC"):
        HDCAlgebra().apply("explode", a, b)


def test_text_packing_round_trip():
    frame = TensorFrame.empty(1)
    code = "def f(x):\n    return x * 2  # ünïcode\n"
    write_text(frame, 0, code, slot=6)
    assert read_text(frame, 0, slot=6) == code


def test_router_routes_math_and_passes_through_below_threshold():
    router = IntentRouter([MathEngine(), HDCAlgebra()])
    frame = math_frame(1, 3, 4)
    (decision,) = router.route(frame)
    assert decision.strand == "math_engine" and decision.activated and decision.slot == 1
    words = StubTranslator().encode("the cat sat")
    before = words.data.clone()
    (decision,) = router.route(words)
    assert not decision.activated and "below threshold" in decision.description
    assert torch.equal(words.data, before)


def test_router_catches_strand_failure_and_keeps_frame():
    class Exploding(MathEngine):
        def process(self, frame, b=0):
            frame.write(8, 0, torch.ones(256))  # half-done work must be rolled back
            raise RuntimeError("boom")

    frame = math_frame(1, 3, 4)
    before = (frame.data.clone(), frame.mask.clone(), frame.certainty.clone())
    (decision,) = IntentRouter([Exploding()]).route(frame)
    assert decision.failed and not decision.activated and "RuntimeError: boom" in decision.error
    assert torch.equal(frame.data, before[0]) and torch.equal(frame.mask, before[1]) and torch.equal(frame.certainty, before[2])


def test_router_batched_rows_are_independent():
    frames = [math_frame(1, 1, 2), StubTranslator().encode("hello world"), math_frame(3, 3, 3)]
    batch = TensorFrame.empty(3)
    for i, f in enumerate(frames):
        for name in ("data", "mask", "certainty", "role", "source", "needs_verify"):
            getattr(batch, name)[i] = getattr(f, name)[0]
    decisions = IntentRouter([MathEngine()]).route(batch)
    assert [d.activated for d in decisions] == [True, False, True]
    assert float(batch.read(8, 0, b=0)[0]) == 3 and float(batch.read(8, 0, b=2)[0]) == 9


def test_builtin_strands_are_plugins_with_deterministic_capabilities():
    router = IntentRouter.from_plugins(load_plugins())
    names = [s.name for s in router.strands]
    assert names[:4] == ["math_engine", "hdc_algebra", "code_runner", "code_debugger"]  # the original's order
    caps = {s.name: s.capability_vector() for s in router.strands}
    assert torch.equal(caps["math_engine"], seeded_unit_vector(SEEDS["math_engine"]))
    assert all(abs(float(v.norm()) - 1) < 1e-5 for v in caps.values())


def test_unknown_strand_name_is_a_usage_error():
    from voltx.errors import UsageError

    with pytest.raises(UsageError, match="unknown strand 'maths'"):
        IntentRouter.from_plugins(load_plugins(), ["maths"])
