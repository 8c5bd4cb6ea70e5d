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


def test_think_answers_arithmetic_through_math_engine(cli_in_process):
    done = cli_in_process("think", "3 + 4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"
    trace = json.loads(cli_in_process("think", "what is 2.5 * 4?", "--json").stdout)
    first = trace["routing"][0]
    assert first["strand"] == "math_engine" and first["activated"] and trace["answer"] == "10"
    assert trace["safety_before"]["level"] == "Pass" and trace["safety_after"]["level"] == "Pass"
    assert trace["verified"] and trace["proof_length"] == 1 and trace["rar"] is None
    assert trace["global_gamma"] == 0.9  # min rule over the Predicate (0.9) and Instrument/Result (1.0) slots


def test_think_words_run_rar_and_report_convergence(cli_in_process):
    trace = json.loads(cli_in_process("think", "the chef cooks pasta", "--json", "--max-iterations", "30").stdout)
    assert not trace["routing"][0]["activated"]
    rar = trace["rar"]
    assert 1 <= rar["iterations"] <= 30 and set(rar["per_slot_iterations"]) == {"S0", "S1", "S2", "S3"}
    assert [s["slot"] for s in trace["slots"]] == ["S0", "S1", "S2", "S3"]
    assert all(s["source"] == "soft_core" for s in trace["slots"])
    assert trace["answer"] == "the chef cooks pasta."  # decoded from R1, which RAR leaves alone


def test_think_cli_answers_exactly_and_says_which_strand_answered(cli_in_process):
    done = cli_in_process("think", "16777216 + 1")
    assert done.returncode == 0 and done.stdout.strip() == "16777217", done.stderr  # float32 gave 16777216
    done = cli_in_process("think", "(17 * 3) - 5", "--json")
    trace = json.loads(done.stdout)
    assert done.returncode == 0 and trace["answer"] == "46"  # was echoed back as "(17 * 3) - 5."
    assert trace["strand"] == "math_engine" and trace["exact"] is True and trace["error"] is None
    assert "parsed arithmetic expression '(17 * 3) - 5'" in trace["reason"]


@pytest.mark.parametrize("query,needle", [
    ("10 / 0", "division by zero: 10 / 0"),
    ("10 ** 10000", "result too large: 10 ** 10000 would have about 10,001 digits; the MathEngine computes with at most 4,000 digits and answers at most 400 digits"),
])
def test_think_refusal_is_exit_65_with_the_reason(cli_in_process, query, needle):
    done = cli_in_process("think", query)
    assert done.returncode == 65 and done.stdout == "" and "Traceback" not in done.stderr  # was "[slot1] [slot6]." and exit 0
    assert f"voltx: error: math_engine cannot answer {query!r}: {needle}" in done.stderr
    done = cli_in_process("think", query, "--json")
    trace = json.loads(done.stdout)
    assert done.returncode == 65 and trace["answer"] == "" and trace["error"]["exit_code"] == 65 and needle in trace["error"]["message"]


def test_think_refusal_exit_code_through_the_real_entry_point(cli):
    """The in-process tests above read main()'s return value; this one is `python -m voltx`'s exit status."""
    done = cli("think", "10 / 0", timeout=60)
    assert done.returncode == 65 and done.stdout == "" and "Traceback" not in done.stderr
    assert "voltx: error: math_engine cannot answer '10 / 0': division by zero: 10 / 0" in done.stderr


def test_a_strand_bug_is_a_note_not_a_crash():
    class Broken(MathEngine):
        def process(self, frame, b=0):
            raise RuntimeError("boom")

    result = ThinkPipeline(StubTranslator(), IntentRouter([Broken()])).think("3 + 4")
    assert result.trace["routing"][0]["error"] == "RuntimeError: boom" and result.trace["slots"]  # the frame is kept
    assert result.trace["strand"] is None and result.answer == ""  # was "[slot1] [slot6]." after RAR
    assert result.error == {"kind": "no_answer", "strand": "math_engine", "exit_code": 69,
                            "message": "math_engine answers arithmetic but failed on it (RuntimeError: boom): "
                                       "a bug in that strand, please report it"}


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


def test_missing_checkpoint_is_a_clear_error(cli_in_process, tmp_path):
    done = cli_in_process("think", "hello", "--checkpoint", str(tmp_path / "nope"))
    assert done.returncode == 66 and "Traceback" not in done.stderr
    assert "code_tokenizer.json" in done.stderr and "voltx run translator" in done.stderr


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A translator checkpoint as `voltx run translator` leaves it (tokenizer JSON, two safetensors), untrained."""
    from safetensors.torch import save_file

    from voltx.engine.slot_decoder import SlotDecoder
    from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
    from voltx.engine.tokenizer import save_tokenizer, train_bpe

    root = tmp_path_factory.mktemp("translator")
    texts = [f"def add_{i}(a, b):\n    return a + b * {i}\n" for i in range(200)]
    tok = train_bpe(texts, vocab_size=300)
    save_tokenizer(tok, root / "code_tokenizer.json")
    torch.manual_seed(0)
    save_file(CnnFrameEncoder(vocab_size=tok.get_vocab_size(), max_seq_len=64).state_dict(), str(root / "code_encoder.safetensors"))
    save_file(SlotDecoder(vocab_size=tok.get_vocab_size(), max_len=64).state_dict(), str(root / "code_decoder.safetensors"))
    return root


def test_learned_translator_checkpoint_round_trip(cli_in_process, tiny_checkpoint):
    done = cli_in_process("think", "def add(a, b): return a + b", "--checkpoint", str(tiny_checkpoint), "--json", "--max-iterations", "5")
    assert done.returncode == 0, done.stderr
    trace = json.loads(done.stdout)
    assert trace["translator"] == "learned" and trace["slots"] and isinstance(trace["answer"], str)
    assert trace["request"] is None and trace["rar"] is not None  # code text, not a request: the encoder's slots, RAR


def test_learned_translator_routes_arithmetic_to_the_math_engine_exactly(cli_in_process, tiny_checkpoint):
    done = cli_in_process("think", "16777216 + 1", "--checkpoint", str(tiny_checkpoint))
    assert done.returncode == 0 and done.stdout.strip() == "16777217", done.stderr  # was the decoder's "�rrrr…", exit 0
    trace = json.loads(cli_in_process("think", "(17 * 3) - 5", "--checkpoint", str(tiny_checkpoint), "--json").stdout)
    assert trace["translator"] == "learned" and trace["request"] == "math_engine"
    assert trace["strand"] == "math_engine" and trace["answer"] == "46" and trace["exact"] is True and trace["rar"] is None
    done = cli_in_process("think", "1 / 0", "--checkpoint", str(tiny_checkpoint))
    assert done.returncode == 65 and done.stdout == ""
    assert "voltx: error: math_engine cannot answer '1 / 0': division by zero: 1 / 0" in done.stderr


def test_learned_translator_prints_the_strands_exact_text(tiny_checkpoint):
    from voltx.engine.learned_translator import LearnedTranslator

    translator = LearnedTranslator.load(tiny_checkpoint)
    result = ThinkPipeline(translator, IntentRouter([MathEngine()])).think("2 ** 200 + 1")
    assert result.answer == str(2**200 + 1) and result.error is None  # 61 digits from S8 R2, not the decoder's tokens
    frame = translator.encode("what is 2.5 times 4?")
    assert StubTranslator().encode("what is 2.5 times 4?").data.equal(frame.data)  # the one request encoding


def test_think_runs_and_debugs_code_in_the_sandbox(cli_in_process):
    done = cli_in_process("think", "run: print(sum(range(10)))")
    assert done.returncode == 0 and done.stdout.strip() == "45"
    trace = json.loads(cli_in_process("think", "debug: def f(x):\n    y = x - 1\n    return 10 / y\nf(1)", "--json").stdout)
    assert trace["routing"][0]["strand"] == "code_debugger"
    assert trace["answer"] == "ZeroDivisionError: division by zero at line 3 in f: return 10 / y"
    assert trace["routing"][0]["details"]["locals"] == {"x": "1", "y": "0"}


def test_think_applies_a_saved_isotonic_calibrator(cli_in_process, tmp_path):
    from voltx.engine.calibration import IsotonicCalibrator

    gammas = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95] * 20
    correct = [0, 0, 0, 1, 0, 1] * 20
    path = tmp_path / "calibration.safetensors"
    IsotonicCalibrator().fit(gammas, correct).save(path)
    trace = json.loads(cli_in_process("think", "3 + 4", "--json", "--calibration", str(path)).stdout)
    expected = float(IsotonicCalibrator.load(path).transform([0.9])[0])
    assert trace["global_gamma"] == 0.9 and trace["calibrated_gamma"] == round(expected, 4)
    assert json.loads(cli_in_process("think", "3 + 4", "--json").stdout)["calibrated_gamma"] is None
