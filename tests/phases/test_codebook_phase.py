"""The codebook phase end to end through `voltx codebook init` (a real run in the run store),
its bad inputs, and the reservoir sample it keeps of the corpus vectors."""

from __future__ import annotations

import json
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from voltx.testing import run_events as events
from voltx.engine.codebook import Codebook
from voltx.errors import EXIT_DATA, EXIT_NO_INPUT, EXIT_USAGE
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx_phases.codebook import DELIVERABLES
from voltx_phases.codebook_train import Reservoir

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A few real Python files (from this interpreter's standard library)."""
    root = tmp_path / "corpus"
    root.mkdir()
    for name in ("textwrap.py", "shlex.py", "json/decoder.py"):
        (root / name.replace("/", "_")).write_text((STDLIB / name).read_text(encoding="utf-8"), encoding="utf-8")
    return root


@pytest.mark.slow
def test_codebook_init_end_to_end(cli_in_process, tmp_path, corpus):
    proc = cli_in_process("codebook", "init", "--corpus", str(corpus), "--k", "64", "--iters", "5", "--output", str(tmp_path / "out" / "codebook_code.bin"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    assert run_dir.parent.name == "codebook" and load_manifest(run_dir).record.status == "finished"
    cb = Codebook.load(run_dir / "artifacts" / "codebook.safetensors")
    assert cb.k == 64 and torch.allclose(cb.entries.norm(dim=1), torch.ones(64), atol=1e-5)
    assert torch.equal(Codebook.load_vxcb(tmp_path / "out" / "codebook_code.bin").entries, cb.entries)
    assert (tmp_path / "checkpoints" / "codebook.safetensors").exists()  # published like any phase artifact
    evs = events(run_dir)
    kinds = [e["kind"] for e in evs]
    assert kinds.count("deliverable") == 1 and "artifact" in kinds
    (verdict,) = [e for e in evs if e["kind"] == "deliverable"]
    assert verdict["metric"] == "codebook/quantization_error" and verdict["op"] == "<" and verdict["threshold"] == 0.15
    (evaluation,) = [e for e in evs if e["kind"] == "evaluation"]
    error = evaluation["metrics"]["codebook/quantization_error"]
    assert verdict["value"] == error and 0.0 <= error <= 1.0
    # judged against a single-entry codebook (no k-means), with a random codebook and the spread beside it
    k1 = evaluation["metrics"]["codebook/quantization_error_k1"]
    assert verdict["baseline_metric"] == "codebook/quantization_error_k1" and verdict["baseline"] == k1
    assert verdict["ablations"] == {"codebook/random_error": evaluation["metrics"]["codebook/random_error"]}
    assert verdict["passed"] == (error < 0.15 and error < k1)
    spread = evaluation["metrics"]["codebook/mean_cosine_to_centroid"]
    assert spread == pytest.approx(1 - k1) and -1 <= evaluation["metrics"]["codebook/mean_pairwise_cosine"] <= 1
    (deliverable,) = DELIVERABLES
    easy = replace(deliverable, threshold=1.0)  # only the baseline half of the rule decides
    assert easy.judge({**evaluation["metrics"], deliverable.metric: error})["passed"] is (error < k1)
    refused = easy.judge({**evaluation["metrics"], deliverable.metric: k1})
    assert refused["passed"] is False and "does not beat the baseline codebook/quantization_error_k1" in refused["reason"]
    (data,) = [e for e in evs if e["kind"] == "data"]
    assert data["files"] == 3 and data["encoder"] == "stub" and data["holdout"] == data["vectors"] // 10
    assert evaluation["metrics"]["codebook/heldout_vectors"] == data["holdout"]
    log = (run_dir / "stdout.log").read_text()
    assert "[kmeans] Iteration 1/5, mean centroid movement: " in log and "[codebook-init] Quantization error" in log
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == list(range(1, len(metrics) + 1)) and metrics[0]["stage"] == "kmeans"


def test_missing_corpus_is_a_clean_error(cli_in_process, tmp_path):
    proc = cli_in_process("codebook", "init", "--corpus", str(tmp_path / "nope"), "--k", "64")
    assert proc.returncode == EXIT_NO_INPUT, proc.stderr
    assert "Traceback" not in proc.stderr and "nope: corpus path not found" in proc.stderr
    assert list_run_dirs(tmp_path / "runs") == []  # nothing was started
    bad = cli_in_process("codebook", "init", "--corpus", str(tmp_path), "--k", "70000")
    assert bad.returncode == EXIT_USAGE and "--k must be between 1 and 65,536" in bad.stderr


@pytest.mark.slow
def test_too_few_vectors_for_k(cli_in_process, tmp_path, corpus):
    proc = cli_in_process("run", "codebook", f"corpus=[{json.dumps(str(corpus))}]", "k=60000", "--progress", "plain")
    assert proc.returncode == EXIT_DATA, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "k=60,000 needs at least that many" in proc.stderr
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    assert load_manifest(run_dir).record.status == "failed"


def test_reservoir_is_a_uniform_sample_of_the_stream():
    stream = torch.arange(20_000)
    res = Reservoir(2_000, torch.Generator().manual_seed(0))
    for start in range(0, len(stream), 137):
        res.add(stream[start : start + 137])
    sample = res.rows()
    assert res.seen == 20_000 and sample.shape == (2_000,)
    assert sample.unique().numel() == 2_000  # no row twice
    deciles = torch.bincount(sample // 2_000, minlength=10)
    assert deciles.min() > 140 and deciles.max() < 260  # ~200 from every tenth of the stream
    keep_all = Reservoir(None, torch.Generator())
    keep_all.add(stream[:5])
    keep_all.add(stream[5:9])
    assert keep_all.rows().tolist() == list(range(9))
    small = Reservoir(100, torch.Generator())
    small.add(stream[:30])
    assert small.rows().tolist() == list(range(30))  # under capacity: everything, in order
