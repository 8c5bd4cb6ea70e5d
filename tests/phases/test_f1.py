"""Phase F1 (lexical grounding): token slot labels, slot masking, the contrastive term, a tiny
end-to-end run on an easy template corpus, exact resume, and bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from baseline_verdicts import assert_verdicts_refuse_their_baselines
from voltx.testing import run_events as events
from voltx.errors import EXIT_CONFIG, EXIT_DATA, EXIT_NO_INPUT
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.runs.store import RunReader
from voltx_phases.f1 import DELIVERABLES
from voltx_phases.f1_data import IGNORE, collate_srl, drop_slot_tokens, encode_srl, mask_slot_text, slot_spans, token_labels
from voltx_phases.f1_eval import context_mean, fill_queries, retrieved
from voltx_phases.f1_train import choose_masks, contrastive_terms

AGENTS = ["dog", "cat", "chef", "boy", "girl", "teacher", "farmer", "doctor"]
VERBS = [("chased", "chased"), ("ate", "eaten"), ("found", "found"), ("carried", "carried"), ("washed", "washed")]
PATIENTS = ["ball", "food", "bone", "stick", "car", "book", "apple"]
PLACES = ["park", "kitchen", "garden", "house", "street"]


def frame(rng: random.Random) -> tuple[str, tuple[str, str], str, str]:
    return rng.choice(AGENTS), rng.choice(VERBS), rng.choice(PATIENTS), rng.choice(PLACES)


def easy_corpus(folder: Path, count: int) -> tuple[Path, Path]:
    """Active and passive template sentences (slots S0-S3) and active/passive paraphrase pairs:
    roles follow word order and voice, so a few steps learn them."""
    rng = random.Random(7)
    srl, para = [], []
    for _ in range(count):
        a, (v, pp), p, l = frame(rng)
        if rng.random() < 0.5:
            srl.append({"text": f"The {a} {v} the {p} in the {l}.", "slots": {"S0": a, "S1": v, "S2": p, "S3": l}})
        else:
            srl.append({"text": f"The {p} was {pp} by the {a} in the {l}.", "slots": {"S0": a, "S1": pp, "S2": p, "S3": l}})
        a, (v, pp), p, l = frame(rng)
        active = f"The {a} {v} the {p} in the {l}."
        if rng.random() < 0.5:
            para.append({"a": active, "b": f"The {p} was {pp} by the {a} in the {l}.", "score": 5.0, "label": 1})
        else:
            a2, p2 = rng.choice(AGENTS), rng.choice(PATIENTS)
            para.append({"a": active, "b": f"The {p2} was {pp} by the {a2} in the {l}.", "score": 1.0 + (a2 == a) + (p2 == p), "label": 0})
    srl_path, para_path = folder / "srl.jsonl", folder / "para.jsonl"
    srl_path.write_text("".join(json.dumps(r) + "\n" for r in srl))
    para_path.write_text("".join(json.dumps(r) + "\n" for r in para))
    return srl_path, para_path


TINY = ["vocab_size=300", "max_seq_len=16", "epochs=3", "batch_size=16", "lr=3e-3", "warmup=3", "vfn_hidden=32",
        "fill_iterations=2", "decoder_epochs=1", "decoder_batch_size=16", "decoder_max_len=16", "eval_candidates=8",
        "fill_eval_queries=16", "eval_max_examples=40", "valid_fraction=0.2", "run.log_every=1"]


# One OpenMP thread per run: the suite shares two cores, and oversubscribed OpenMP barriers made
# this run's small steps take ~10 s each instead of ~0.1 s.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def tiny(srl: Path, para: Path, *extra: str) -> list[str]:
    return [f"srl_data=[{json.dumps(str(srl))}]", f"paraphrase_data=[{json.dumps(str(para))}]", *TINY, *extra]


# --- token slot labels ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tok():
    from voltx_phases.lang_stack import train_tokenizer

    rng = random.Random(0)
    texts = [f"The {a} {v} the {p} in the {l}." for a, (v, _), p, l in (frame(rng) for _ in range(200))]
    return train_tokenizer(texts + ["The ball was chased by the dog.", "a dogma of dogs"] * 5, 300)


def word_labels(tok, text: str, slots: dict[str, str]) -> list[tuple[str, set[int]]]:
    """(word, labels of the BPE tokens overlapping it) for each space-separated word of ``text``."""
    enc = tok.encode(text, add_special_tokens=False)
    labels = token_labels(list(enc.offsets), slot_spans(text, slots))
    out, pos = [], 0
    for word in text.split(" "):
        start, end = pos, pos + len(word)
        out.append((word, {l for (s, e), l in zip(enc.offsets, labels) if s < end and e > start}))
        pos = end + 1
    return out


def test_labels_active_sentence(tok):
    got = word_labels(tok, "The dog chased the ball", {"S0": "dog", "S1": "chased", "S2": "ball"})
    assert got == [("The", {IGNORE}), ("dog", {0}), ("chased", {1}), ("the", {IGNORE}), ("ball", {2})]


def test_labels_passive_and_case_and_repeats(tok):
    got = word_labels(tok, "The ball was chased by the Dog", {"S0": "dog", "S1": "chased", "S2": "ball"})
    assert got == [("The", {IGNORE}), ("ball", {2}), ("was", {IGNORE}), ("chased", {1}), ("by", {IGNORE}),
                   ("the", {IGNORE}), ("Dog", {0})]  # case-insensitive, every piece of a split word
    # the same word in two slots: each takes its own occurrence, in slot order
    assert slot_spans("The dog saw the dog", {"S2": "dog", "S0": "dog"}) == [(4, 7, 0), (16, 19, 2)]
    # whole words only; a multi-word head matches across spaces
    assert slot_spans("a dogma of dogs", {"S0": "dog"}) == []
    assert slot_spans("the New  York office", {"S3": "new york"}) == [(4, 13, 3)]


def test_choose_masks_and_contrastive():
    gen = torch.Generator().manual_seed(0)
    gold = torch.zeros(3, 16, dtype=torch.bool)
    gold[0, :4] = True
    gold[1, 0] = True
    gold[2, :2] = True
    active = gold.clone()
    active[1, 5] = True  # one gold slot plus one unannotated active slot: still maskable
    active[2, 1] = False  # one active slot: nothing left to infer it from
    masked = choose_masks(gold, active, 0.25, gen)
    assert masked.sum(-1).tolist() == [1, 1, 0]
    assert not (masked & ~(gold & active)).any()
    sa = torch.eye(4, 8)  # orthogonal unit rows: each pair's own partner is the only close one (no global RNG)
    loss, top1 = contrastive_terms(sa, sa.clone(), torch.tensor([True, True, False, True]), 0.07)
    assert float(top1) == 1.0 and float(loss) < 0.1
    zero, _ = contrastive_terms(sa, sa, torch.zeros(4, dtype=torch.bool), 0.07)
    assert float(zero) == 0.0


# --- slot filling: the word is cut out of the text ----------------------------------------------


def test_slot_fill_text_has_the_word_removed(tok):
    assert mask_slot_text("The dog chased the ball in the park.", ((4, 7, 0), (8, 14, 1), (19, 23, 2)), 2) \
        == "The dog chased the in the park."
    assert mask_slot_text("Yesterday, the dog slept.", ((0, 9, 4), (15, 18, 0)), 4) == ", the dog slept."
    rng = random.Random(3)
    records = []
    for _ in range(30):
        a, (v, _), p, l = frame(rng)
        records.append({"text": f"The {a} {v} the {p} in the {l}.", "slots": {"S0": a, "S1": v, "S2": p, "S3": l}})
    items, _ = encode_srl(tok, records, 32)
    queries = fill_queries(tok, items, 32, candidates=8, limit=40, seed=0)
    assert len(queries) == 40 and {q.slot for q in queries} == {0, 1, 2, 3}
    for q in queries:
        word = items[q.item].fillers[q.slot]
        decoded = tok.decode(list(q.ids)).lower()
        assert word not in q.text.lower().split() and word not in decoded.replace(".", " ").split(), (q.text, word)
        others = [w for r, w in items[q.item].fillers.items() if r != q.slot and w != word]
        assert all(w in decoded for w in others)  # only the masked slot's word is gone
        assert q.item not in q.candidates and all(q.slot in items[j].fillers for j in q.candidates)
    # training drops exactly the tokens labelled with a masked slot, the rest stay in order
    ids, mask, labels, gold = collate_srl(items[:4])
    masked = torch.zeros(4, 16, dtype=torch.bool)
    masked[:, 2] = True
    short, short_mask = drop_slot_tokens(ids, mask, labels, masked)
    for row in range(4):
        keep = mask[row] & labels[row].ne(2)
        assert short[row][short_mask[row]].tolist() == ids[row][keep].tolist()
        assert tok.decode(short[row][short_mask[row]].tolist()).split().count(items[row].fillers[2]) == 0


def test_slot_fill_verdict_refuses_what_the_context_mean_scores():
    """Frames whose every slot is the same direction (plus noise): the context mean, no model,
    retrieves the masked slot; a slot-filling value no better than it must fail its verdict."""
    gen = torch.Generator().manual_seed(0)
    sentences = torch.nn.functional.normalize(torch.randn(12, 1, 256, generator=gen), dim=-1)
    frames = torch.nn.functional.normalize(sentences + 0.05 * torch.randn(12, 16, 256, generator=gen), dim=-1)
    context = torch.zeros(12, 16, dtype=torch.bool)
    context[:, [0, 1, 3]] = True  # slot 2 masked
    mean = context_mean(frames, context)
    baseline = sum(retrieved(mean[i], frames[[i, *[j for j in range(12) if j != i]], 2]) for i in range(12)) / 12
    assert baseline == 1.0
    slot_fill = next(d for d in DELIVERABLES if d.metric == "grounding/slot_fill_accuracy")
    metrics = {"grounding/slot_fill_accuracy": 0.9, "grounding/slot_fill_context_mean": baseline,
               "grounding/slot_fill_chance": 1 / 12}
    verdict = slot_fill.judge(metrics)
    assert not verdict["passed"] and verdict["baseline_metric"] == "grounding/slot_fill_context_mean"
    assert slot_fill.judge({**metrics, "grounding/slot_fill_context_mean": 0.5})["passed"]


# --- end to end ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_f1_run_end_to_end(cli_in_process, tmp_path):
    """In this process (F1 as a process of its own, killed and resumed, is the test below)."""
    srl, para = easy_corpus(tmp_path, 240)
    done = cli_in_process("run", "f1", *tiny(srl, para), "--progress", "plain")
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    assert load_manifest(run_dir).record.status == "finished"
    assert "[grounding] [Epoch 1/3] Step 1/" in done.stderr and "[decoder] [Epoch 1/1] Complete" in done.stderr

    from voltx_phases.lang_stack import load_lang_stack

    art = run_dir / "artifacts"
    stack = load_lang_stack(art, torch.device("cpu"), need_decoder=True, phase="f2")
    assert stack.tokenizer.get_vocab_size() == 300 and stack.encoder.max_seq_len == 16
    with safe_open(str(art / "slot_filler.safetensors"), "pt") as fh:
        assert json.loads(fh.metadata()["voltx"])["kind"] == "slot_filler"
    filler = load_file(str(art / "slot_filler.safetensors"))
    assert filler["prior"].shape == (16, 256) and "vfn.fc1.weight" in filler and "attention.wq.weight" in filler

    evs = events(run_dir)
    evals = {k: v for e in evs if e["kind"] == "evaluation" for k, v in e["metrics"].items()}
    for key in ("slot_accuracy", "slot_accuracy_majority", "sts_spearman", "sts_spearman_word_overlap",
                "dog_canine_agent_cosine", "agent_cosine_unrelated", "agent_cosine_same_class", "slot_fill_accuracy",
                "slot_fill_chance", "slot_fill_context_mean", "slot_fill_prior_accuracy", "slot_fill_accuracy_at_horizon"):
        assert f"grounding/{key}" in evals and f"grounding/dev/{key}" in evals, key
    assert "decoder/valid_token_accuracy" in evals and "decoder/valid_token_accuracy_majority" in evals
    # learned: roles follow word order and voice in this corpus
    assert evals["grounding/slot_accuracy"] > evals["grounding/slot_accuracy_majority"] + 0.2
    verdicts = [e for e in evs if e["kind"] == "deliverable"]
    assert len(verdicts) == 4 and all(v["value"] is not None for v in verdicts)
    assert_verdicts_refuse_their_baselines(DELIVERABLES, evals, verdicts)
    test_evals = [e for e in evs if e["kind"] == "evaluation" and "grounding/slot_accuracy" in e["metrics"]]
    assert len(test_evals) == 1  # the test split is evaluated once, after the dev split's 3 epochs
    rar_events = [e for e in evs if e["kind"] == "rar"]
    assert len(rar_events) == 4  # one per evaluation: 3 dev, 1 test
    assert len(rar_events[-1]["slot_converged"]) == 16 and len(rar_events[-1]["gamma"]) == 16
    assert rar_events[-1]["max_iterations"] == 30 and rar_events[-1]["iterations"]
    samples = [e for e in evs if e["kind"] == "samples"]
    assert samples and len(samples[-1]["samples"]) == 2
    metrics = RunReader(run_dir)
    metrics.refresh()
    grounding = [m for m in metrics.metrics if m.stage == "grounding"]
    assert all("rar/iterations_mean" in m.extra and "role_acc" in m.extra and "fill" in m.losses for m in grounding)


@pytest.mark.slow
def test_f1_sigkill_then_resume_is_exact(tmp_path):
    srl, para = easy_corpus(tmp_path, 120)
    cmd = [sys.executable, "-m", "voltx", "run", "f1", "--progress", "plain", *tiny(srl, para, "epochs=2", "run.checkpoint_every=2")]

    def env(runs: Path) -> dict:
        return {**os.environ, **ONE_THREAD, "VOLTX_RUNS_DIR": str(runs)}

    ref = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    (reference,) = list_run_dirs(tmp_path / "ref")

    runs = tmp_path / "killed"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(runs))
    deadline = time.time() + 300
    killed = None
    while time.time() < deadline and killed is None:
        dirs = list_run_dirs(runs)
        if dirs and (dirs[0] / "metrics.jsonl").exists():
            lines = [l for l in (dirs[0] / "metrics.jsonl").read_text().splitlines() if l.endswith("}")]
            if lines and json.loads(lines[-1])["step"] >= 5:  # mid-grounding, after a checkpoint
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed = dirs[0]
        assert proc.poll() is None or killed is not None, "the run ended before it could be killed"
        time.sleep(0.02)
    assert killed is not None
    resumed = subprocess.run([*cmd[:5], "--resume", str(killed), "--progress", "plain"], capture_output=True, text=True,
                             timeout=600, env=env(runs))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("lang_encoder.safetensors", "slot_filler.safetensors", "lang_decoder.safetensors"):
        a, b = load_file(str(reference / "artifacts" / name)), load_file(str(killed / "artifacts" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    ra, rb = RunReader(reference), RunReader(killed)
    ra.refresh()
    rb.refresh()
    assert [(m.step, m.losses) for m in ra.metrics] == [(m.step, m.losses) for m in rb.metrics]


# --- bad input -----------------------------------------------------------------------------------


def assert_clean_failure(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-2000:])


def test_paraphrase_file_given_as_srl_data(cli_in_process, tmp_path):
    srl, para = easy_corpus(tmp_path, 10)
    proc = cli_in_process("run", "f1", *tiny(para, para), env=ONE_THREAD)
    assert_clean_failure(proc, EXIT_DATA, "para.jsonl:1", "text", "slot_annotated")


def test_missing_file(cli_in_process, tmp_path):
    srl, para = easy_corpus(tmp_path, 10)
    assert_clean_failure(cli_in_process("run", "f1", *tiny(srl, tmp_path / "nope.jsonl"), env=ONE_THREAD), EXIT_NO_INPUT, "nope.jsonl", "f1.paraphrase_data")


def test_unknown_generator_option(cli_in_process, tmp_path):
    proc = cli_in_process("run", "f1", 'srl_data=["gen:srl_gen?colour=3"]', *TINY, env=ONE_THREAD)
    assert_clean_failure(proc, EXIT_CONFIG, "srl_gen", "colour")
