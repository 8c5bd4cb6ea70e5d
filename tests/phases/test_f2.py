"""Phase F2 (world knowledge): the unitary relation algebra, analogy questions, and tiny
end-to-end runs on an easy generated knowledge base (learned bind retrieval above chance,
artifacts, deliverable verdicts, F1's stack passed through, resume after preemption, bad input)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from baseline_verdicts import assert_verdicts_refuse_their_baselines
from voltx.testing import run_events as events, evaluated_metrics as evaluation
from voltx.engine import hdc
from voltx.errors import EXIT_DATA, EXIT_NO_INPUT, EXIT_OK, EXIT_PREEMPTED
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx_phases.f2 import DELIVERABLES

COLORS = "red blue green yellow black white".split()
CATEGORIES = {"animal": ("farm", "dog cat horse cow".split()), "tool": ("workshop", "hammer saw drill wrench".split())}
TINY = ["lang_from=none", "vocab_size=300", "epochs=3", "batch_size=32", "warmup=2", "lr=2e-3", "valid_fraction=0.1", "negatives=3",
        "codebook_size=16", "analogy_queries=40", "run.log_every=1", "run.telemetry_interval=0"]
KEYS = ("bind_top1", "bind_hits10", "bind_mrr", "bind_top1_filtered", "bind_chance", "bind_popular_top1", "analogy_top1",
        "analogy_copy_baseline", "analogy_unitary_top1", "codebook_quantization_error", "codebook_k1_error", "embedding_spread",
    "codebook_random_error", "energy_rank_accuracy")


def easy_triples() -> list[dict]:
    """Compositional triples: "red dog" HasColor red, IsA dog, AtLocation farm; dog IsA animal."""
    out = []
    for category, (place, nouns) in CATEGORIES.items():
        for noun in nouns:
            out.append({"head": noun, "relation": "IsA", "tail": category})
            for color in COLORS:
                thing = f"{color} {noun}"
                out += [{"head": thing, "relation": r, "tail": t} for r, t in (("HasColor", color), ("IsA", noun), ("AtLocation", place))]
    return out


@pytest.fixture
def easy_kb(tmp_path) -> Path:
    path = tmp_path / "easy.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in easy_triples()), encoding="utf-8")
    return path


def data(path: Path) -> str:
    return f"triples_data={json.dumps([str(path)])}"


# --- units ------------------------------------------------------------------------------------------


def test_unitary_relations_make_unbind_the_exact_inverse_of_bind():
    from voltx_phases.f2_train import UnitaryRelations

    torch.manual_seed(0)
    rel = UnitaryRelations(6)
    r = rel.vectors()
    assert torch.allclose(torch.fft.rfft(r, dim=-1).abs(), torch.ones(6, 129), atol=1e-5)  # magnitude 1 in every bin
    assert torch.allclose(r.norm(dim=-1), torch.ones(6), atol=1e-5)
    a = torch.randn(6, 256)
    assert torch.allclose(hdc.unbind(hdc.bind(a, r), r), a, atol=1e-5)
    assert torch.allclose(hdc.bind(a, r).norm(dim=-1), a.norm(dim=-1), atol=1e-4)  # a rotation
    r.sum().backward()
    assert rel.phase.grad is not None and torch.isfinite(rel.phase.grad).all()


def test_category_relations():
    from voltx_phases.f2_train import is_category_relation

    assert all(map(is_category_relation, ["/r/IsA", "IsA", "isa", "is_a", "hypernym", "_hypernym"]))
    assert not any(map(is_category_relation, ["/r/UsedFor", "PartOf", "Synonym"]))


def test_analogy_questions_pair_held_out_triples_of_one_relation():
    from voltx_phases.f2_eval import analogy_questions, known_tails

    held = [(0, 0, 1), (2, 0, 3), (4, 0, 5), (6, 0, 1), (7, 1, 8), (9, 2, 10), (11, 2, 10)]
    known = known_tails(held)
    qs = analogy_questions(held, known, limit=50, seed=3)
    assert qs and len(qs) == len(set(qs)) and qs == analogy_questions(held, known, limit=50, seed=3)
    by_pair = {(h, r): t for h, r, t in held}
    for q in qs:
        assert q.relation == 0  # relation 1 has one triple, relation 2 only questions whose answer is B
        assert by_pair[(q.a, q.relation)] == q.b and q.a != q.c
        assert known[(q.c, q.relation)] - {q.a, q.b, q.c}
    assert len(analogy_questions(held, known, limit=2, seed=3)) == 2
    assert analogy_questions([(0, 0, 1), (2, 1, 3)], known_tails([(0, 0, 1), (2, 1, 3)]), limit=10, seed=0) == []


# --- end to end ------------------------------------------------------------------------------------


def fake_f1_stack(where: Path, triples: list[dict]) -> None:
    """A language stack as F1 publishes it: tokenizer, encoder (max_seq_len 6, shorter than
    f2's) and decoder, each with its constructor arguments in the metadata."""
    from voltx.engine.slot_decoder import SlotDecoder
    from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
    from voltx.engine.tokenizer import save_tokenizer, train_bpe
    from voltx import artifacts

    where.mkdir(parents=True)
    tok = train_bpe([t[k] for t in triples for k in ("head", "tail")], vocab_size=300, min_frequency=2)
    save_tokenizer(tok, where / "lang_tokenizer.json")
    enc_args = {"vocab_size": tok.get_vocab_size(), "max_seq_len": 6}
    dec_args = {"vocab_size": tok.get_vocab_size(), "model_dim": 64, "ffn_dim": 128, "max_len": 16}
    for name, kind, module, args in (("lang_encoder", "lang_encoder", CnnFrameEncoder(**enc_args), enc_args),
                                     ("lang_decoder", "lang_decoder", SlotDecoder(**dec_args), dec_args)):
        artifacts.save(where / f"{name}.safetensors", module.state_dict(), kind, args, phase="f1")


def wait_for_steps(runs: Path, count: int, proc) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        dirs = list_run_dirs(runs) if runs.exists() else []
        metrics = dirs[0] / "metrics.jsonl" if dirs else None
        if metrics is not None and metrics.exists() and metrics.read_text().count("\n") >= count:
            return
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"f2 never logged {count} steps")


@pytest.mark.slow
def test_f2_from_an_f1_stack_preempted_resumed_learns_relations(tmp_path, easy_kb):
    """One run covers the phase: F1's stack loaded (encoder shorter than f2.max_seq_len),
    SIGTERM mid-training (exit 75), resume to the end, learned retrieval, artifacts, verdicts."""
    from voltx.engine.codebook import Codebook

    f1 = tmp_path / "f1" / "artifacts"
    fake_f1_stack(f1, easy_triples())
    env = {**os.environ, "VOLTX_RUNS_DIR": str(tmp_path / "runs")}
    args = [sys.executable, "-m", "voltx", "run", "f2", data(easy_kb), *TINY, f"lang_from={f1}", "--progress", "plain"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    wait_for_steps(tmp_path / "runs", 3, proc)
    proc.send_signal(signal.SIGTERM)
    _, first = proc.communicate(timeout=180)
    assert proc.returncode == EXIT_PREEMPTED, first[-3000:]
    assert f"Language stack: {f1}" in first
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    done = subprocess.run([sys.executable, "-m", "voltx", "run", "f2", "--resume", str(run_dir), "--progress", "plain"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    assert "[knowledge] resumed at step" in done.stderr
    assert load_manifest(run_dir).record.status == "finished"

    art = run_dir / "artifacts"
    # the fine-tuned encoder keeps F1's shape; the decoder and tokenizer pass through unchanged
    enc_before, enc_after = load_file(str(f1 / "lang_encoder.safetensors")), load_file(str(art / "lang_encoder.safetensors"))
    assert enc_after.keys() == enc_before.keys() and not torch.equal(enc_after["embed_head.weight"], enc_before["embed_head.weight"])
    dec_before, dec_after = load_file(str(f1 / "lang_decoder.safetensors")), load_file(str(art / "lang_decoder.safetensors"))
    assert all(torch.equal(dec_before[k], dec_after[k]) for k in dec_before)
    assert (art / "lang_tokenizer.json").read_text() == (f1 / "lang_tokenizer.json").read_text()
    with safe_open(str(art / "relations.safetensors"), "pt") as fh:
        meta = json.loads(fh.metadata()["voltx"])
        relations = fh.get_tensor("relations")
        assert any(k.startswith("energy_head.") for k in fh.keys())
    assert meta["names"] == ["AtLocation", "HasColor", "IsA"] and relations.shape == (3, 256)
    assert torch.allclose(torch.fft.rfft(relations, dim=-1).abs(), torch.ones(3, 129), atol=1e-4)
    assert Codebook.load(art / "concept_codebook.safetensors").k == 16

    ev = evaluation(run_dir)
    for key in KEYS:
        assert f"knowledge/{key}" in ev and f"knowledge/dev/{key}" in ev, key
    assert ev["knowledge/bind_top1"] > 3 * ev["knowledge/bind_chance"]  # learned, not chance
    assert ev["knowledge/bind_mrr"] > 0.2 and ev["knowledge/bind_hits10"] >= ev["knowledge/bind_top1"]
    assert ev["knowledge/codebook_quantization_error"] < ev["knowledge/codebook_random_error"]
    verdicts = [e for e in events(run_dir) if e["kind"] == "deliverable"]
    assert {v["metric"] for v in verdicts} == {"knowledge/bind_top1", "knowledge/analogy_top1", "knowledge/codebook_quantization_error"}
    assert_verdicts_refuse_their_baselines(DELIVERABLES, ev, verdicts)
    assert "bind@1 " in done.stderr and "chance" in done.stderr


def test_codebook_verdict_refuses_bunched_embeddings():
    """The issue's loophole: structureless embeddings bunched around one direction quantise well
    with any codebook, and a single entry (their mean) does as well; the verdict must refuse it.
    Embeddings with real clusters pass it."""
    from voltx.engine.codebook import kmeans
    from voltx_phases.f2_eval import codebook_figures

    gen = torch.Generator().manual_seed(0)
    direction = torch.nn.functional.normalize(torch.randn(256, generator=gen), dim=0)
    deliverable = next(d for d in DELIVERABLES if d.metric == "knowledge/codebook_quantization_error")

    def verdict(cand: torch.Tensor, n_train: int) -> tuple[dict, dict]:
        model = types.SimpleNamespace(codebook=kmeans(cand[:n_train], 16, iters=10, seed=0))
        figures = codebook_figures(model, cand, list(range(n_train, cand.shape[0])), n_train, seed=0)
        return figures, deliverable.judge({f"knowledge/{k}": v for k, v in figures.items()})

    bunched = torch.nn.functional.normalize(direction + 0.02 * torch.randn(240, 256, generator=gen), dim=-1)
    figures, bunched_verdict = verdict(bunched, 200)
    assert figures["codebook_quantization_error"] < deliverable.threshold  # the threshold alone would pass it
    assert figures["embedding_spread"] > 0.9 and not bunched_verdict["passed"]
    assert bunched_verdict["baseline_metric"] == "knowledge/codebook_k1_error"
    centers = torch.nn.functional.normalize(torch.randn(8, 256, generator=gen), dim=-1)
    clustered = torch.nn.functional.normalize(centers.repeat(30, 1) + 0.02 * torch.randn(240, 256, generator=gen), dim=-1)
    figures, clustered_verdict = verdict(clustered, 200)
    assert clustered_verdict["passed"], clustered_verdict["reason"]
    assert figures["codebook_random_error"] > figures["codebook_k1_error"] > figures["codebook_quantization_error"]


# --- bad input -----------------------------------------------------------------------------------


def assert_clean_failure(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-2000:])


def test_missing_f1_stack_names_phase_f1(cli_in_process, tmp_path, easy_kb):
    done = cli_in_process("run", "f2", data(easy_kb), *TINY, f"lang_from={tmp_path / 'no-f1-here'}")
    assert_clean_failure(done, EXIT_NO_INPUT, "phase f1", "voltx run f1", "no-f1-here")


def test_slot_annotated_file_is_not_triples(cli_in_process, tmp_path):
    bad = tmp_path / "srl.jsonl"
    bad.write_text(json.dumps({"text": "the chef cooks pasta", "slots": {"S0": "chef", "S1": "cooks", "S2": "pasta"}}) + "\n")
    done = cli_in_process("run", "f2", data(bad), *TINY)
    assert_clean_failure(done, EXIT_DATA, "srl.jsonl:1", "field ", "triples")
