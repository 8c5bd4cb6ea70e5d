"""Phase F3 (compositional reasoning): the slot corruption, the reasoning chains, a tiny
end-to-end run (artifacts that reload, evaluation keys with their baselines, deliverable
verdicts, the RAR telemetry event), resume after preemption, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from conftest import run_events as events, evaluated_metrics as evaluation
from voltx.engine.attention import SlotAttention
from voltx.engine.vfn import ScaledVfn, SlotIdentityHead
from voltx.errors import EXIT_DATA, EXIT_NO_INPUT, EXIT_OK, EXIT_PREEMPTED
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx_phases.f3_data import GLUE, chain_pairs, chain_text, glue, per_task_cap, unglue
from voltx_phases.f3_model import corrupt

TINY = ['reasoning_data=["gen:scan_simple_gen?count=64", "gen:babi_qa1_gen?count=20"]', "eval_max_examples=24",
        "lang_from=none", "vocab_size=500", "max_seq_len=64", "epochs=1", "batch_size=16", "warmup=2", "lr=2e-3",
        "vfn_hidden=32", "vfn_blocks=1", "time_embed_freqs=4", "decoder_max_len=49", "chain_batch=4",  # every answer fits (48 tokens + EOS)
        "rar_max_iterations=6", "run.log_every=1", "run.telemetry_interval=0"]
CORRUPTION = SimpleNamespace(zero_prob=0.2, noise_prob=0.3, shuffle_prob=0.3)


# --- units ----------------------------------------------------------------------------------------


def _frames(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    active = torch.rand((n, 16), generator=g) < 0.6
    slots = torch.nn.functional.normalize(torch.randn((n, 16, 256), generator=g), dim=-1) * active.unsqueeze(-1)
    return slots, active


def test_corruption_changes_only_active_slots_and_sets_their_time():
    clean, active = _frames()
    corr = corrupt(clean, active, torch.Generator().manual_seed(1), CORRUPTION)
    assert corr.slots.shape == clean.shape and corr.time.shape == active.shape == corr.changed.shape
    moved = (corr.slots - clean).abs().amax(-1) > 0
    assert torch.equal(moved, corr.changed)
    assert not (moved & ~active).any()  # inactive slots untouched
    assert corr.changed.float().mean() > 0.3  # roughly zero + noise + shuffle shares of the active slots
    assert ((corr.time >= 0) & (corr.time <= 1)).all()
    assert corr.time[~corr.changed].std() > 0.2  # clean slots at any time (RAR's clock), not only t = 1
    zeroed = corr.changed & (corr.slots.norm(dim=-1) == 0)
    assert zeroed.any() and (corr.time[zeroed] == 0).all()
    # every corrupted vector that is not zeroed is a unit vector: noised ones are renormalised,
    # shuffled ones are another active slot of the same frame
    alive = corr.changed & ~zeroed
    assert torch.allclose(corr.slots[alive].norm(dim=-1), torch.ones(int(alive.sum())), atol=1e-5)
    swapped = alive & (corr.time == 0)
    assert swapped.any()
    for b, s in swapped.nonzero().tolist():
        sims = clean[b] @ corr.slots[b, s]
        assert sims.max() > 0.9999 and int(sims.argmax()) != s and bool(active[b, int(sims.argmax())])
    # replayable: the same generator state gives the same corruption
    again = corrupt(clean, active, torch.Generator().manual_seed(1), CORRUPTION)
    assert torch.equal(again.slots, corr.slots) and torch.equal(again.time, corr.time)


def test_chain_frames_are_cumulative_prefixes_and_skip_stepless_records():
    records = [
        {"input": "jump twice and walk", "output": "J J W", "steps": ["jump twice -> J J", "walk -> W"], "task": "scan"},
        {"input": "Where is Mary?", "output": "garden", "steps": [], "task": "qa1"},
        {"input": "Q?", "output": "x", "steps": ["a.", "b.", "c."], "task": "kinship_3hop"},
    ]
    assert chain_text(records[0], 0) == "jump twice and walk"
    assert chain_text(records[0], 2) == "jump twice and walk jump twice -> J J walk -> W"
    index, src, dst = chain_pairs(records, torch.tensor([0.99, 0.5, 0.4]))
    assert index == [0, 2]  # the record without steps is skipped
    assert src == ["jump twice and walk jump twice -> J J", "Q? a."]
    assert dst == ["jump twice and walk jump twice -> J J walk -> W", "Q? a. b."]
    for s, d in zip(src, dst):
        assert d.startswith(s) and len(d) > len(s)  # f_{k+1} = f_k plus one step


def test_glue_is_lossless_and_cap_is_per_task():
    r = {"input": "walk", "output": "I_TURN_LEFT I_WALK", "steps": ["walk -> I_WALK"], "task": "scan"}
    g = glue(r)
    assert "_" not in g["output"] and GLUE in g["output"] and unglue(g["output"]) == r["output"]
    assert r["output"] == "I_TURN_LEFT I_WALK"  # the original is not modified
    recs = [{"task": t} for t in "a a a b b c".split()]
    assert [x["task"] for x in per_task_cap(recs, 2)] == ["a", "a", "b", "b", "c"]


# --- end to end --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_f3_tiny_run_preempted_resumed_end_to_end(tmp_path):
    """One run covers the phase (a second tiny run cost as much again): SIGTERM mid-training
    (exit 75), resume to the end, evaluation keys with their baselines, deliverable verdicts,
    the RAR telemetry event, artifacts that reload."""
    env = {**os.environ, "VOLTX_RUNS_DIR": str(tmp_path / "runs")}
    cmd = [sys.executable, "-m", "voltx", "run", "f3", *TINY, "epochs=2"]
    proc = subprocess.Popen([*cmd, "--progress", "plain"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.time() + 180
    while time.time() < deadline:
        runs = list_run_dirs(tmp_path / "runs") if (tmp_path / "runs").exists() else []
        metrics = runs[0] / "metrics.jsonl" if runs else None
        if metrics and metrics.exists() and metrics.read_text().count("\n") >= 3:
            break
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("f3 never logged three steps")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == EXIT_PREEMPTED, err[-3000:]
    assert "a BPE tokenizer trained on the F3 texts" in err
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    resumed = subprocess.run([*cmd[:5], "--resume", str(run_dir), "--progress", "plain"], env=env, capture_output=True,
                             text=True, cwd=tmp_path, timeout=300)
    assert resumed.returncode == EXIT_OK, resumed.stderr[-3000:]
    assert "[reasoning] resumed at step" in resumed.stderr
    assert load_manifest(run_dir).record.status == "finished"
    assert "[reasoning] [Epoch 2/2] Complete" in resumed.stderr and "majority" in resumed.stderr

    ev = evaluation(run_dir)
    for key in ("scan_accuracy", "scan_majority_baseline", "babi_accuracy", "babi_qa1_accuracy", "babi_qa1_majority_baseline",
                "babi_majority_baseline", "babi_best_constant", "babi_qa1_best_constant", "scan_token_accuracy", "answer_token_accuracy", "denoise_slot_share", "denoise_share_before",
                "rar_converged_share", "rar_iterations_mean"):
        value = ev[f"reasoning/{key}"]
        assert 0.0 <= value <= (6 if key == "rar_iterations_mean" else 1.0), key
    assert "reasoning/babi_qa2_accuracy" not in ev and "reasoning/kinship_accuracy" not in ev  # absent tasks: not reported
    assert ev["reasoning/babi_qa1_majority_baseline"] > 0  # most frequent training location shows up in the test split
    assert ev["reasoning/babi_qa1_best_constant"] >= ev["reasoning/babi_qa1_majority_baseline"]
    assert 1 <= ev["reasoning/babi_qa1_distinct_predictions"] <= 24
    kinds = [e["kind"] for e in events(run_dir)]
    assert kinds.count("deliverable") == 4  # judged once, at the end of the resumed attempt
    rar = [e for e in events(run_dir) if e["kind"] == "rar"]
    assert rar and len(rar[-1]["slot_converged"]) == 16 and len(rar[-1]["gamma"]) == 16
    assert rar[-1]["max_iterations"] == 6 and max(rar[-1]["iterations"]) <= 6 and len(rar[-1]["iterations"]) == 48
    series = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if l.strip()]
    assert "rar/iterations_mean" in series[-1] and "answer_acc" in series[-1]
    assert {"denoise", "fixed", "flow", "identity", "chain", "answer"} <= set(series[-1]["losses"])

    from voltx import artifacts

    art = run_dir / "artifacts"
    vfn_file = artifacts.read(art / "vfn_foundation.safetensors", "vfn_foundation")
    args, tensors = vfn_file.args, vfn_file.tensors
    assert args == {"dim": 256, "hidden": 32, "blocks": 1, "time_freqs": 4}
    part = torch.nn.ModuleDict({"vfn": ScaledVfn(**args), "attention": SlotAttention(256), "identity": SlotIdentityHead()})
    part.load_state_dict(tensors)  # strict: exactly these modules
    for name in ("lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors"):
        assert (art / name).exists(), name


# --- bad input ---------------------------------------------------------------------------------------


def assert_clean_failure(proc, code: int, *needles: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr[-2000:])


def test_missing_language_stack_names_phase_f1(cli_in_process, tmp_path):
    done = cli_in_process("run", "f3", *TINY, f"lang_from={tmp_path / 'no-f1-here'}")
    assert_clean_failure(done, EXIT_NO_INPUT, "phase f1", "voltx run f1", "no-f1-here")


def test_triples_file_is_not_reasoning_data(cli_in_process, tmp_path):
    bad = tmp_path / "triples.jsonl"
    bad.write_text(json.dumps({"head": "dog", "relation": "IsA", "tail": "animal"}) + "\n")
    done = cli_in_process("run", "f3", *TINY, f"reasoning_data={json.dumps([str(bad)])}")
    assert_clean_failure(done, EXIT_DATA, "triples.jsonl:1", "field ", "reasoning")
