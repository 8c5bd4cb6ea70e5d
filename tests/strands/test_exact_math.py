"""The MathEngine is exact: ints and fractions end to end, bounded sizes, a parser that only does arithmetic."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest
import torch

from voltx.engine.arithmetic import MAX_RESULT_DIGITS, MathInputError, evaluate, expression_in
from voltx.engine.frame import TensorFrame
from voltx.engine.pipeline import ThinkPipeline
from voltx.engine.router import IntentRouter
from voltx.engine.strands import StrandError
from voltx.engine.stub_translator import StubTranslator
from voltx.plugins import load_plugins
from voltx_plugins.strands.math_engine import MathEngine


@pytest.fixture(scope="module")
def pipeline():
    from voltx.plugins import reset_plugins

    reset_plugins()
    return ThinkPipeline(StubTranslator(), IntentRouter.from_plugins(load_plugins()))


@pytest.mark.parametrize("query,answer", [
    ("16777216 + 1", "16777217"),  # float32 gave 16777216
    ("123456789 * 1000", "123456789000"),  # float32 gave 123456790528
    ("9007199254740993 - 1", "9007199254740992"),  # past float64's exact integers too
    ("(17 * 3) - 5", "46"),  # compound: the regex translator echoed it back
    ("(2 + 3) * 4", "20"),
    ("2 + 3 * 4", "14"),
    ("-(2 + 3) * -4", "20"),
    ("0.1 + 0.2", "0.3"),  # a decimal literal is the fraction 1/10, not the float
    ("7 / 2", "3.5"),
    ("1 / 3", "1/3 ≈ 0.33333333333333333333"),
    ("7 // 2", "3"),
    ("-7 % 3", "2"),
    ("2 ^ 100", "1267650600228229401496703205376"),
    ("8 ** (-2/3)", "0.25"),
    ("sqrt 16", "4"),
    ("sqrt 2", "≈ 1.4142135623730950488"),
    ("what is 2 plus 3", "5"),
    ("what is 2.5 times 4?", "10"),
    ("What is the square root of 144?", "12"),
    ("10 divided by 4", "2.5"),
    ("3 x 4", "12"),
    ("abs -3", "3"),
])
def test_think_answers_arithmetic_exactly(pipeline, query, answer):
    result = pipeline.think(query)
    assert result.answer == answer
    assert result.trace["strand"] == "math_engine" and result.error is None
    assert result.trace["exact"] is (not answer.startswith("≈"))


def test_json_trace_says_which_strand_answered_and_why(pipeline):
    trace = pipeline.think("(17 * 3) - 5").trace
    assert trace["strand"] == "math_engine" and trace["answer"] == "46" and trace["exact"] is True
    assert "parsed arithmetic expression '(17 * 3) - 5'" in trace["reason"] and "exactly" in trace["reason"]
    assert trace["routing"][0]["details"] == {"op": "expression", "expression": "(17 * 3) - 5", "value": "46", "exact": True, "answer": "46"}
    words = pipeline.think("the chef cooks pasta").trace
    assert words["strand"] is None and words["exact"] is False and "below threshold" in words["reason"]


@pytest.mark.parametrize("query,needle", [
    ("1 / 0", "division by zero"),
    ("5 % 0", "division by zero"),
    ("0 ** -1", "division by zero"),
    ("10 ** 10000", f"at most {MAX_RESULT_DIGITS} digits"),
    ("(2 + 3", "never closed"),
    ("2 + * 3", "not a well-formed arithmetic expression"),
    ("sqrt(-4)", "not a real number"),
])
def test_refusals_are_errors_not_echoed_slots(pipeline, query, needle):
    result = pipeline.think(query)
    assert result.answer == "" and result.error["exit_code"] == 65 and needle in result.error["message"]
    assert result.trace["strand"] == "math_engine" and result.trace["rar"] is None  # refused: no RAR, no made-up answer


def test_size_bounds_are_checked_before_computing():
    assert len(evaluate("10 ** 399").value.exact_form()) == MAX_RESULT_DIGITS
    with pytest.raises(MathInputError, match=r"'10 \*\* 400' has 401 digits; the MathEngine answers exactly up to 400 digits"):
        evaluate("10 ** 400")
    started = time.perf_counter()
    for huge in ("9 ** 9 ** 9", "10 ** 10 ** 100", "2 ** 10 ** 10 / 0", "(10 ** 3000) * (10 ** 3000)", "1e5000 + 1", "7" * 5000 + " + 1"):
        with pytest.raises(MathInputError, match="too large"):
            evaluate(huge)
    assert time.perf_counter() - started < 2  # estimated, never raised to the power
    assert evaluate("1 ** (10 ** 100)").value.exact_form() == "1" and evaluate("(-1) ** 1e300").value.exact_form() == "1"


@pytest.mark.parametrize("code", [
    "__import__('os').system('true')", "(1).__class__", "2 << 3", "True + 1", "a + 1", "[1, 2]", "lambda: 1",
    "1 if 1 else 2", "1 < 2", "sqrt(4, 2)", "1j * 2", "'ab' * 3",
])
def test_parser_refuses_anything_but_arithmetic(code):
    with pytest.raises(MathInputError, match="not arithmetic|not a well-formed|takes exactly one"):
        evaluate(code)


def test_deep_or_long_expressions_are_refused_or_computed_never_crash():
    with pytest.raises(MathInputError, match="nested"):
        evaluate("(" * 1000 + "1" + ")" * 1000)
    with pytest.raises(MathInputError, match="too deeply nested or too long"):
        evaluate("+".join(["1"] * 5000))
    assert evaluate("+".join(["1"] * 384)).value.exact_form() == "384"  # the longest chain a frame's 768 bytes carry


@pytest.mark.parametrize("text,expression", [
    ("what is 2 plus 3", "2 + 3"), ("What's 6 multiplied by 7?", "6 * 7"), ("compute 2^10", "2 ** 10"),
    ("9 minus 4 =", "9 - 4"), ("5 squared", "5 ** 2"), ("√2", "sqrt(2)"), ("neg 5", "- 5"), ("17 mod 5", "17 % 5"),
    ("8 − 3 × 2 ÷ 4", "8 - 3 * 2 / 4"), ("(2 + 3).", "(2 + 3)"),
])
def test_text_forms_become_expressions(text, expression):
    assert expression_in(text) == expression


@pytest.mark.parametrize("text", ["the chef cooks pasta", "42", "run: print(1 + 2)", "hello 2 + 3", "0x10 + 1", "3x4"])
def test_words_are_not_arithmetic(text):
    assert expression_in(text) is None


def test_typed_api_is_exact():
    engine = MathEngine()
    assert engine.compute("add", 16777216, 1).value == 16777217
    assert engine.compute("+", 0.1, 0.2).value == Fraction(3, 10)  # floats as written
    assert engine.compute("div", 1, 3).value == Fraction(1, 3) and engine.compute("div", 1, 3).text() == "1/3 ≈ 0.33333333333333333333"
    assert engine.evaluate("(17 * 3) - 5").value == 46
    with pytest.raises(StrandError, match="division by zero"):
        engine.evaluate("1 / (3 - 3)")


def test_frame_carries_the_exact_answer_as_text():
    translator = StubTranslator()
    frame = translator.encode("2 ** 200 + 1")
    result = MathEngine().process(frame, 0)
    assert result.activated and result.details["exact"]
    assert translator.decode(frame) == str(2**200 + 1)  # 61 digits, through the frame's S8 R2
    assert float(frame.read(8, 0)[0]) == torch.finfo(frame.data.dtype).max  # R0 is the clamped float: finite, flagged valid
    assert float(frame.read(8, 0)[1]) == 1.0 and frame.meta[0].verified


def test_router_marks_a_strand_refusal_with_its_exit_code():
    refused = IntentRouter([MathEngine()]).route(StubTranslator().encode("1 / 0"))[0]
    assert refused.refused and refused.exit_code == 65 and refused.details == {"message": "division by zero: 1 / 0"}

    class Broken(MathEngine):
        def process(self, frame, b=0):
            raise RuntimeError("boom")

    bug = IntentRouter([Broken()]).route(StubTranslator().encode("1 + 1"))[0]
    assert bug.failed and not bug.refused and "exit_code" not in bug.as_dict()  # a bug is not the user's: frame passes through


def test_legacy_float_frame_protocol_still_answers():
    frame = TensorFrame.empty(1)
    frame.write(1, 0, MathEngine().capability_vector(), certainty=0.9)
    ops = torch.zeros(256)
    ops[:3] = torch.tensor([4.0, 7.0, 2.0])  # the original's [op, left, right]: 7 / 2
    frame.write(6, 0, ops, certainty=1.0)
    MathEngine().process(frame, 0)
    assert StubTranslator().decode(frame) == "3.5" and float(frame.read(8, 0)[0]) == 3.5
