"""The translator phase end to end on a tiny real corpus, the seed's three commands, and
every kind of bad input the issue names (clear message, documented exit code, nothing lost)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_TRANSLATOR
from voltx.testing import run_events as events
from voltx.errors import EXIT_CONFIG, EXIT_DATA, EXIT_NO_INPUT, EXIT_USAGE
from voltx.runs.layout import list_run_dirs, load_manifest

pytestmark = pytest.mark.slow

SEED_STEP = re.compile(r"^\[Epoch 1/2\] Step 1/\d+ \| Loss: \d+\.\d{3} \(C: \d+\.\d{3} R: \d+\.\d{3}\) \| LR: [\d.]+e-?\d+ \| [\d.]+ samples/sec$", re.M)
SEED_EPOCH = re.compile(r"^\[Epoch 1/2\] Complete \| Train Loss: [\d.]+ .*\| Valid Loss: [\d.]+ .*\| Time: [\d.]+s$", re.M)


def tiny(data: Path) -> list[str]:
    return [f"data={json.dumps(str(data))}", *TINY_TRANSLATOR]


def test_translator_run_end_to_end(cli_in_process, tmp_path, stdlib_pairs_jsonl):
    """In this process (the translator as processes of their own: tests/train/test_exact_resume.py, test_distributed.py)."""
    done = cli_in_process("run", "translator", *tiny(stdlib_pairs_jsonl), "--progress", "plain")
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    assert load_manifest(run_dir).record.status == "finished"
    log = (run_dir / "stdout.log").read_text()
    assert SEED_STEP.search(done.stderr) and SEED_STEP.search(log)  # the seed's progress line, on stderr and in the log
    assert SEED_EPOCH.search(log)
    assert re.search(r"^Data: \S+: 108 train / 12 valid \(code, docstring\) pairs \(max_examples = 120 of 200\)$", log, re.M)
    # per-epoch weight files and resumable checkpoints are told apart; progress covers both stages
    assert re.search(r"^Weights saved: \S+code_encoder_epoch_1\.safetensors \(epoch 1; weights only", log, re.M)
    assert "Checkpoint saved" not in log
    ckpt = re.findall(r"^\[(encoder|decoder)\] resumable checkpoint: (\S+) \(step (\d+);", log, re.M)
    assert [c[0] for c in ckpt] == ["encoder", "encoder", "decoder"]
    assert all(Path(path).parent == run_dir / "checkpoints" and path.endswith(f"step-{step}") for _, path, step in ckpt)
    progress = re.findall(r"^\[run\] step (\d+)/(\d+) \(\d+%\) in (\w+) \(stage (\d)/2\)", log, re.M)
    total = int(ckpt[-1][2])  # the last checkpoint is at the run's last step
    assert [(int(s), int(t), name) for s, t, name, _ in progress] == [(int(c[2]), total, c[0]) for c in ckpt]
    assert load_manifest(run_dir).record.total_steps == total
    art = run_dir / "artifacts"
    for name in ("code_tokenizer.json", "code_encoder.safetensors", "code_decoder.safetensors",
                 "code_encoder_epoch_1.safetensors", "code_encoder_epoch_2.safetensors", "code_decoder_epoch_1.safetensors"):
        assert (art / name).exists(), name
    tok = json.loads((art / "code_tokenizer.json").read_text())
    assert [t["content"] for t in tok["added_tokens"][:4]] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    kinds = [e["kind"] for e in events(run_dir)]
    assert kinds.count("deliverable") == 3 and "evaluation" in kinds
    evals = {k: v for e in events(run_dir) if e["kind"] == "evaluation" for k, v in e["metrics"].items()}
    for key in ("encoder/valid_loss", "encoder/valid_retrieval_top1", "encoder/valid_role_accuracy", "decoder/valid_token_accuracy"):
        assert 0.0 <= evals[key] < 100
    assert evals["encoder/valid_retrieval_chance"] == 1 / 12  # one pool: all 12 validation pairs (fewer than 64)
    assert_verdicts_need_their_baselines(evals)
    # no preset: artifacts are published to [paths].checkpoints_dir
    assert (tmp_path / "checkpoints" / "code_encoder.safetensors").exists()
    report = cli_in_process("report", "latest", "--json")
    assert report.returncode == 0
    assert {d["metric"] for d in json.loads(report.stdout)["deliverables"]} == {
        "encoder/valid_retrieval_lift", "encoder/valid_role_accuracy", "decoder/valid_token_accuracy"}


def assert_verdicts_need_their_baselines(evals: dict) -> None:
    """Each translator deliverable's baselines and ablations are measured in the run, and its verdict
    refuses a value that only matches its strongest baseline, even with the threshold out of the way."""
    from dataclasses import replace

    from voltx_phases.translator import DELIVERABLES

    for d in DELIVERABLES:
        assert all(evals.get(k) is not None for k in (*d.baselines, *d.ablations)), d.metric
        easy = replace(d, threshold=0.0)  # only the baseline half of the rule decides
        best = easy.judge(evals)["baseline"]
        assert best is not None
        tied = easy.judge({**evals, d.metric: best})
        assert tied["passed"] is False and "does not beat the baseline" in tied["reason"], tied
        assert easy.judge({**evals, d.metric: best + d.margin + 1e-3})["passed"] is True
    assert 0.0 < evals["encoder/valid_role_accuracy_majority"] < 1.0  # the labeller's majority label share
    assert 0.0 < evals["decoder/valid_token_accuracy_majority"] < 1.0


def test_seed_commands_chain(cli_in_process, tmp_path, stdlib_pairs_jsonl):
    """The seed's three commands, each in this process as the tokenizer's always was (the run end to end,
    in its own process, is the test above)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, line in enumerate(stdlib_pairs_jsonl.read_text().splitlines()[:80]):
        (corpus / f"f{i}.py").write_text(json.loads(line)["code"] * 2)
    ck = tmp_path / "ck"
    small = tmp_path / "small.toml"  # the flags the seed does not have stay small through --config
    small.write_text("[translator]\nmax_examples = 120\n[translator.encoder]\nmax_seq_len = 32\nvalid_batches = 2\n"
                     "[translator.decoder]\nmax_len = 32\nvalid_batches = 2\nsample_count = 1\n")
    t = cli_in_process("train-tokenizer", "--corpus", str(corpus), "--vocab-size", "300", "--output", str(ck / "code_tokenizer.json"), "--max-files", "50")
    assert t.returncode == 0, t.stderr[-2000:]
    assert "Tokenizer saved" in t.stderr
    common = ["--data", str(stdlib_pairs_jsonl), "--tokenizer", str(ck / "code_tokenizer.json"), "--epochs", "1", "--batch-size", "16", "--warmup", "2", "--device", "cpu", "--config", str(small)]
    e = cli_in_process("train-encoder", *common, "--output", str(ck / "code_encoder.safetensors"))
    assert e.returncode == 0, e.stderr[-2000:]
    assert f"Weights saved: {ck / 'code_encoder_epoch_1.safetensors'} (epoch 1; weights only" in e.stderr
    assert f"Weights saved: {ck / 'code_encoder.safetensors'} (final; weights only" in e.stderr
    assert (ck / "code_encoder.safetensors").exists()
    d = cli_in_process("train-decoder", *common, "--encoder", str(ck / "code_encoder.safetensors"), "--output", str(ck / "code_decoder.safetensors"))
    assert d.returncode == 0, d.stderr[-2000:]
    assert re.search(r"\| Acc: [\d.]+% \|", d.stderr)
    assert (ck / "code_decoder_epoch_1.safetensors").exists()
    # each command is a run in the run store
    assert len(list_run_dirs(tmp_path / "runs")) == 3
    weights = load_file(str(ck / "code_decoder.safetensors"))
    assert all(torch.isfinite(v).all() for v in weights.values())


# --- bad input -------------------------------------------------------------------------------


def assert_clean_failure(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-2000:])


def test_bad_jsonl_line_names_file_and_line(cli_in_process, tmp_path, stdlib_pairs_jsonl):
    bad = tmp_path / "bad.jsonl"
    lines = stdlib_pairs_jsonl.read_text().splitlines()[:5]
    lines[2] = "{not json"
    bad.write_text("\n".join(lines) + "\n")
    assert_clean_failure(cli_in_process("run", "translator", *tiny(bad)), EXIT_DATA, "bad.jsonl:3")


def test_jsonl_missing_field(cli_in_process, tmp_path):
    bad = tmp_path / "nofield.jsonl"
    bad.write_text(json.dumps({"code": "def f():\n    return 1\n"}) + "\n")
    assert_clean_failure(cli_in_process("run", "translator", *tiny(bad)), EXIT_DATA, "nofield.jsonl:1", "docstring")


def test_missing_and_empty_corpus(cli_in_process, tmp_path):
    assert_clean_failure(cli_in_process("run", "translator", *tiny(tmp_path / "nope.jsonl")), EXIT_NO_INPUT, "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert_clean_failure(cli_in_process("run", "translator", *tiny(empty)), EXIT_DATA, "empty.jsonl")


def test_tokenizer_that_is_not_a_tokenizer(cli_in_process, tmp_path, stdlib_pairs_jsonl):
    fake = tmp_path / "tok.json"
    fake.write_text('{"hello": 1}')
    proc = cli_in_process("train-encoder", "--data", str(stdlib_pairs_jsonl), "--tokenizer", str(fake), "--epochs", "1", "--output", str(tmp_path / "e.safetensors"))
    assert_clean_failure(proc, EXIT_DATA, "tok.json")
    assert not (tmp_path / "e.safetensors").exists()


def test_encoder_checkpoint_of_wrong_shape(cli_in_process, tmp_path, stdlib_pairs_jsonl):
    ck = tmp_path / "ck"
    t = cli_in_process("train-tokenizer", "--corpus", str(stdlib_pairs_jsonl), "--vocab-size", "300", "--output", str(ck / "tok.json"))
    assert t.returncode == 0, t.stderr[-2000:]
    from safetensors.torch import save_file

    from voltx.engine.cnn_frame_encoder import CnnFrameEncoder

    save_file(CnnFrameEncoder(vocab_size=999).state_dict(), str(ck / "wrong.safetensors"))
    existing = ck / "code_decoder.safetensors"
    existing.write_bytes(b"previous decoder, must survive")
    proc = cli_in_process("train-decoder", "--data", str(stdlib_pairs_jsonl), "--tokenizer", str(ck / "tok.json"), "--encoder", str(ck / "wrong.safetensors"),
               "--epochs", "1", "--output", str(existing))
    assert_clean_failure(proc, EXIT_DATA, "wrong.safetensors", "shape")
    assert existing.read_bytes() == b"previous decoder, must survive"


def test_unknown_phase_and_unknown_override(cli_in_process, tmp_path):
    assert_clean_failure(cli_in_process("run", "translater"), EXIT_USAGE, "unknown phase 'translater'", "did you mean 'translator'")
    assert_clean_failure(cli_in_process("run", "translator", "encoder.lrr=3e-4"), EXIT_CONFIG, "encoder.lrr", "did you mean", "translator.encoder.lr")
    assert list_run_dirs(tmp_path / "runs") == []  # nothing was created for a bad command line
