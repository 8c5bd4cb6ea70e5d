"""`voltx think` never answers with unrendered slots: a query nothing in use can answer is exit 69, saying what would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from voltx.engine.frame import TensorFrame
from voltx.engine.pipeline import ThinkPipeline
from voltx.engine.router import IntentRouter
from voltx.engine.seeded import fnv1a64, seeded_unit_vector
from voltx.engine.stub_translator import StubTranslator
from voltx.errors import EXIT_CODES, NoAnswerError
from voltx_plugins.strands.hdc_algebra import HDCAlgebra
from voltx_plugins.strands.math_engine import MathEngine

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_arithmetic_with_its_strand_left_out_says_which_strand_and_how(cli_in_process):
    done = cli_in_process("think", "3 + 4", "--strands", "hdc_algebra,code_runner")
    assert done.returncode == 69 and done.stdout == "" and "Traceback" not in done.stderr  # was "[slot1] [slot6]." and exit 0
    assert done.stderr.strip() == (
        "voltx: error: no answer to '3 + 4': math_engine answers arithmetic but is not among the strands in use "
        "(hdc_algebra, code_runner): add it (--strands hdc_algebra,code_runner,math_engine) or leave --strands out "
        "to use every installed strand")
    done = cli_in_process("think", "(17 * 3) - 5", "--strands", "hdc_algebra", "--json")
    trace = json.loads(done.stdout)
    assert done.returncode == 69 and trace["answer"] == "" and trace["strand"] is None and trace["request"] == "math_engine"
    assert trace["error"]["kind"] == "no_answer" and trace["error"]["strand"] == "math_engine" and trace["error"]["exit_code"] == 69
    assert trace["rar"] is None  # RAR cannot compute: the request was not run through it


def test_code_with_its_strand_left_out_is_no_answer():
    result = ThinkPipeline(StubTranslator(), IntentRouter([MathEngine()])).think("run: print(1)")
    assert result.answer == "" and result.error["exit_code"] == 69 and result.error["strand"] == "code_runner"
    assert "code_runner answers `run:` code but is not among the strands in use (math_engine)" in result.error["message"]


def test_a_strand_that_could_not_be_built_is_named_with_its_error():
    router = IntentRouter([HDCAlgebra()], unavailable={"math_engine": "ImportError: no module named fractions"})
    result = ThinkPipeline(StubTranslator(), router).think("16777216 + 1")
    assert result.error["message"] == ("math_engine answers arithmetic but could not be built (ImportError: no module "
                                       "named fractions); `voltx plugins` shows its plugin's status")


def test_with_no_strands_the_routing_says_so():
    words = ThinkPipeline(StubTranslator(), IntentRouter([])).think("the chef cooks pasta")
    assert words.trace["routing"][0]["description"] == "no strand is in use: nothing to route to"  # was "no active slot to route"
    assert words.answer == "the chef cooks pasta." and words.error is None  # words still go through RAR and render
    assert words.trace["reason"] == ("no strand answered (no strand is in use: nothing to route to); "
                                     "the translator decoded the slots RAR refined")
    broken = IntentRouter([], unavailable={"math_engine": "RuntimeError: boom"})
    assert broken.route(StubTranslator().encode("hi"))[0].description == (
        "no strand is in use: nothing to route to (could not be built: math_engine: RuntimeError: boom)")
    arithmetic = ThinkPipeline(StubTranslator(), IntentRouter([])).think("3 + 4")
    assert arithmetic.error["exit_code"] == 69 and "is not among the strands in use (none)" in arithmetic.error["message"]
    assert IntentRouter([MathEngine()]).route(TensorFrame.empty(1))[0].description == "the frame has no active slot: nothing to route"


def test_stub_decoder_refuses_slots_it_has_no_word_for():
    class Foreign(StubTranslator):  # a frame whose slots hold vectors the stub never encoded
        def encode(self, text):
            frame = TensorFrame.empty(1)
            for slot, word in ((0, "chef"), (2, "pasta")):
                frame.write(slot, 0, seeded_unit_vector(fnv1a64(word)), certainty=0.8)
            return frame

    result = ThinkPipeline(Foreign(), IntentRouter([MathEngine()])).think("the chef cooks pasta")
    assert result.answer == "" and result.error["kind"] == "no_answer" and result.error["strand"] is None
    assert result.error["message"].startswith("the stub translator has no word for slots S0 (Agent), S2 (Patient): "
                                              "it renders only strand answers and the words of its own input. Pass --checkpoint")
    with pytest.raises(NoAnswerError):
        StubTranslator().decode(StubTranslator().encode("3 + 4"))  # an unanswered request: S1, S6 hold no words


def test_no_answer_never_prints_placeholders(cli_in_process):
    for query, strands in (("3 + 4", "hdc_algebra"), ("debug: f(", "code_runner")):
        done = cli_in_process("think", query, "--strands", strands)
        assert done.returncode == 69 and not re.search(r"\[slot\d+\]", done.stdout + done.stderr)


def test_empty_query_is_a_usage_error(cli_in_process):
    done = cli_in_process("think", "  ")
    assert done.returncode == 64 and done.stdout == "" and "the query is empty" in done.stderr  # was an empty line, exit 0


def test_exit_code_table_covers_think_refusals_and_no_answer():
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", README, re.M))
    assert "voltx think" in rows["65"] and "query" in EXIT_CODES[65]  # was "names the file, line and field" only
    assert rows["69"] == EXIT_CODES[69] and "not available" in rows["69"]
