"""``voltx think``: the inference pipeline end to end (CLI and API)."""

from __future__ import annotations

import json

import pytest
import torch

from voltx.engine.frame import TensorFrame
from voltx.engine.pipeline import ThinkPipeline
from voltx.engine.router import IntentRouter
from voltx.engine.safety import default_axioms
from voltx.engine.stub_translator import StubTranslator
from voltx_plugins.strands.math_engine import MathEngine


def test_think_answers_arithmetic_through_math_engine(cli):
    done = cli("think", "3 + 4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
    trace = json.loads(cli("think", "what is 2.5 * 4?", "--json").stdout)
    first = trace["routing"][0]
    assert first["strand"] == "math_engine" and first["activated"] and trace["answer"] == "10"
    assert trace["safety_before"]["level"] == "Pass" and trace["safety_after"]["level"] == "Pass"
    assert trace["verified"] and trace["proof_length"] == 1 and trace["rar"] is None
    assert trace["global_gamma"] == 0.9  # min rule over the Predicate (0.9) and Instrument/Result (1.0) slots


def test_think_words_run_rar_and_report_convergence(cli):
    trace = json.loads(cli("think", "the chef cooks pasta", "--json", "--max-iterations", "30").stdout)
    assert not trace["routing"][0]["activated"]
    rar = trace["rar"]
    assert 1 <= rar["iterations"] <= 30 and set(rar["per_slot_iterations"]) == {"S0", "S1", "S2", "S3"}
    assert [s["slot"] for s in trace["slots"]] == ["S0", "S1", "S2", "S3"]
    assert all(s["source"] == "soft_core" for s in trace["slots"])
    assert trace["answer"] == "the chef cooks pasta."  # decoded from R1, which RAR leaves alone


def test_think_cli_answers_exactly_and_says_which_strand_answered(cli):
    done = cli("think", "16777216 + 1")
    assert done.returncode == 0 and done.stdout.strip() == "16777217", done.stderr  # float32 gave 16777216
    done = cli("think", "(17 * 3) - 5", "--json")
    trace = json.loads(done.stdout)
    assert done.returncode == 0 and trace["answer"] == "46"  # was echoed back as "(17 * 3) - 5."
    assert trace["strand"] == "math_engine" and trace["exact"] is True and trace["error"] is None
    assert "parsed arithmetic expression '(17 * 3) - 5'" in trace["reason"]


@pytest.mark.parametrize("query,needle", [
    ("10 / 0", "division by zero: 10 / 0"),
    ("10 ** 10000", "result too large: 10 ** 10000 would have about 10,001 digits; the MathEngine computes with at most 4,000 digits and answers at most 400 digits"),
])
def test_think_refusal_is_exit_65_with_the_reason(cli, query, needle):
    done = cli("think", query, timeout=60)
    assert done.returncode == 65 and done.stdout == "" and "Traceback" not in done.stderr  # was "[slot1] [slot6]." and exit 0
    assert f"voltx: error: math_engine cannot answer {query!r}: {needle}" in done.stderr
    done = cli("think", query, "--json", timeout=60)
    trace = json.loads(done.stdout)
    assert done.returncode == 65 and trace["answer"] == "" and trace["error"]["exit_code"] == 65 and needle in trace["error"]["message"]


def test_a_strand_bug_is_a_note_not_a_crash():
    class Broken(MathEngine):
        def process(self, frame, b=0):
            raise RuntimeError("boom")

    result = ThinkPipeline(StubTranslator(), IntentRouter([Broken()])).think("3 + 4")
    assert result.error is None and result.trace["routing"][0]["error"] == "RuntimeError: boom"
    assert result.trace["rar"] is not None and result.trace["strand"] is None  # the frame went on to RAR, as before


def test_safety_veto_before_the_pipeline():
    k1 = next(a for a in default_axioms() if a.name.startswith("K1"))

    class Harmful(StubTranslator):
        def encode(self, text):
            frame = TensorFrame.empty(1)
            frame.write(0, 0, k1.vector, certainty=0.8)
            return frame

    result = ThinkPipeline(Harmful(), IntentRouter([MathEngine()])).think("anything")
    assert result.trace["vetoed"] and result.answer == ""
    assert result.trace["veto_reason"].startswith("VIOLATION: axiom=K1")
    assert result.trace["routing"] == []  # the pipeline never ran


def test_missing_checkpoint_is_a_clear_error(cli, tmp_path):
    done = cli("think", "hello", "--checkpoint", str(tmp_path / "nope"))
    assert done.returncode == 66 and "Traceback" not in done.stderr
    assert "code_tokenizer.json" in done.stderr and "voltx run translator" in done.stderr


def test_learned_translator_checkpoint_round_trip(cli, tmp_path):
    from safetensors.torch import save_file

    from voltx.engine.code_decoder import CodeDecoder
    from voltx.engine.code_encoder import CodeEncoder
    from voltx.engine.tokenizer import save_tokenizer, train_bpe

    texts = [f"def add_{i}(a, b):\n    return a + b * {i}\n" for i in range(200)]
    tok = train_bpe(texts, vocab_size=300)
    save_tokenizer(tok, tmp_path / "code_tokenizer.json")
    torch.manual_seed(0)
    save_file(CodeEncoder(vocab_size=tok.get_vocab_size(), max_seq_len=64).state_dict(), str(tmp_path / "code_encoder.safetensors"))
    save_file(CodeDecoder(vocab_size=tok.get_vocab_size(), max_len=64).state_dict(), str(tmp_path / "code_decoder.safetensors"))
    done = cli("think", "def add(a, b): return a + b", "--checkpoint", str(tmp_path), "--json", "--max-iterations", "5")
    assert done.returncode == 0, done.stderr
    trace = json.loads(done.stdout)
    assert trace["translator"] == "learned" and trace["slots"] and isinstance(trace["answer"], str)


def test_think_runs_and_debugs_code_in_the_sandbox(cli):
    done = cli("think", "run: print(sum(range(10)))")
    assert done.returncode == 0 and done.stdout.strip() == "45"
    trace = json.loads(cli("think", "debug: def f(x):\n    y = x - 1\n    return 10 / y\nf(1)", "--json").stdout)
    assert trace["routing"][0]["strand"] == "code_debugger"
    assert trace["answer"] == "ZeroDivisionError: division by zero at line 3 in f: return 10 / y"
    assert trace["routing"][0]["details"]["locals"] == {"x": "1", "y": "0"}


def test_think_applies_a_saved_isotonic_calibrator(cli, tmp_path):
    from voltx.engine.calibration import IsotonicCalibrator

    gammas = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95] * 20
    correct = [0, 0, 0, 1, 0, 1] * 20
    path = tmp_path / "calibration.safetensors"
    IsotonicCalibrator().fit(gammas, correct).save(path)
    trace = json.loads(cli("think", "3 + 4", "--json", "--calibration", str(path)).stdout)
    expected = float(IsotonicCalibrator.load(path).transform([0.9])[0])
    assert trace["global_gamma"] == 0.9 and trace["calibrated_gamma"] == round(expected, 4)
    assert json.loads(cli("think", "3 + 4", "--json").stdout)["calibrated_gamma"] is None
