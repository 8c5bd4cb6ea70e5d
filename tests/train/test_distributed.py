"""Distributed runs on the CPU (gloo, world size 2) through real `voltx run --nproc-per-node 2`:
one run and one metrics stream, stop -> 75 -> resume bitwise equal to an uninterrupted run (with
FSDP2 sharding one layer and the other replicated, so both strategies' paths run), a killed rank
that takes the job down cleanly, and the bad input the launcher refuses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_TRANSLATOR
from voltx.testing import fake_plugin_dist, plugin_env, run_events as events
from voltx.errors import EXIT_OK, EXIT_PREEMPTED, EXIT_RANK_LOST, EXIT_UNAVAILABLE, EXIT_USAGE, ConfigError, UsageError
from voltx.runs.checkpoints import committed
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.train.launcher import check_world_size

TOY = Path(__file__).with_name("toy_phase.py")
TWO = ["--nproc-per-node", "2"]
SMALL = ["epochs=2", "rows=64", "batch_size=8", "run.log_every=1", "run.telemetry_interval=0"]
FSDP = ["hardware.strategy=fsdp", "hardware.fsdp_min_parameters=0", "shard=true", "grad_clip=0.5", "hardware.precision=fp16", "hardware.auto_batch=true"]


@pytest.fixture
def env(tmp_path):
    site = fake_plugin_dist(tmp_path / "site", "voltx-toy", "voltx_toy_phase", TOY.read_text(), entry_name="toy")
    return {**os.environ, **plugin_env(site), "VOLTX_RUNS_DIR": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}


def voltx_run(env, *args) -> list[str]:
    return [sys.executable, "-m", "voltx", "run", "toy", "--progress", "plain", *args]


def steps(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def wait_for_step(run_root: Path, step: int, proc: subprocess.Popen, timeout=240.0, besides: tuple[Path, ...] = ()) -> Path:
    """The run under ``run_root`` once it logged ``step``; ``timeout`` bounds a stuck job, it is no speed check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_dir in set(list_run_dirs(run_root) if run_root.exists() else []) - set(besides):
            if (run_dir / "metrics.jsonl").exists() and len(steps(run_dir)) >= step:
                return run_dir
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before step {step}: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"no step {step} in {timeout} s")


def final_state(run_dir: Path) -> dict:
    """The last checkpoint's tensors (model, optimizer, rank 0's and rank 1's RNG and sums) and the artifact."""
    last = committed(run_dir / "checkpoints")[-1]
    out = {f"{f.stem}/{k}": v for f in sorted(last.glob("*.safetensors")) for k, v in load_file(f).items()}
    out.update({f"artifact/{k}": v for k, v in load_file(run_dir / "artifacts" / "toy.safetensors").items()})
    return out


def evaluated_once_as_one_process_would(run_dir: Path) -> bool:
    """Rank 0's recorded evaluation equals this process's evaluation of the final weights on the same data
    (under fp16 autocast, as the run evaluates)."""

    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)).eval()
    model.load_state_dict(load_file(run_dir / "artifacts" / "toy.safetensors"))
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))  # the toy phase's data
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        mse = float(torch.nn.functional.mse_loss(model(x), y))
    recorded = [e for e in events(run_dir) if e["kind"] == "evaluation"][-1]["metrics"]["fit/mse"]
    return recorded == mse


def test_stop_resume_under_two_processes_is_bitwise_an_uninterrupted_run(env, tmp_path):
    """The toy's first layer is sharded (FSDP2), its last replicated and all-reduced (the ddp path);
    the gradients are clipped over both, at fp16 (the shards gathered in fp16, the loss scaler's state
    checkpointed), the batch split by auto_batch. Checkpoints hold the full fp32 tensors, gathered."""
    runs = tmp_path / "runs"
    whole = subprocess.run(voltx_run(env, *TWO, *SMALL, *FSDP), env=env, capture_output=True, text=True, timeout=180)
    assert whole.returncode == EXIT_OK, whole.stderr[-3000:]
    assert "2 processes on the CPU with gloo (no CUDA device here" in whole.stderr
    (reference,) = list_run_dirs(runs)
    logged = steps(reference)
    assert [r["step"] for r in logged] == list(range(1, 17))  # one stream: 8 global batches of 8 a epoch, rank 0 logs
    assert load_manifest(reference).record.status == "finished"
    assert [e["kind"] for e in events(reference)].count("evaluation") == 2  # once an epoch, by rank 0
    last = committed(reference / "checkpoints")[-1]
    assert json.loads((last / "state.json").read_text())["world_size"] == 2 and (last / "rank-1.safetensors").exists()
    assert evaluated_once_as_one_process_would(reference)
    hw = load_manifest(reference).raw["hardware"]["fit"]
    assert hw["strategy"] == ("fsdp: 0 (80 parameters) sharded over 2 processes, the rest replicated, gathered in fp16, "
                              "gradients reduced in fp32, fp32 masters")
    assert hw["auto_batch"]["per_process"] == 4 and hw["micro_batches"] == 1
    assert hw["auto_batch"]["state_bytes"] == 4 * (3 * 40 + 3 * 17)  # gradients and 2 moments: rank's half of layer 0, all of layer 2
    weights = load_file(last / "model.safetensors")
    assert weights["0.weight"].shape == (16, 4) and {w.dtype for w in weights.values()} == {torch.float32}  # whole fp32 masters
    assert json.loads((last / "state.json").read_text())["scaler"]["scale"] > 0

    proc = subprocess.Popen(voltx_run(env, *TWO, *SMALL, *FSDP, "sleep=0.05"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = wait_for_step(runs, 5, proc, besides=(reference,))
    proc.send_signal(signal.SIGTERM)  # to the launcher: it passes the stop to both ranks
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_PREEMPTED, err[-3000:]
    assert load_manifest(run_dir).record.status == "preempted"
    manifest = (run_dir / "run.json").read_bytes()

    with pytest.raises(UsageError, match="by 2 processes in all .* this resume asks for 1"):  # what `voltx run` and the launcher
        check_world_size(run_dir, 1)  # ask before the run is opened: a resume in one process is refused, nothing written
    assert (run_dir / "run.json").read_bytes() == manifest

    resumed = subprocess.run(voltx_run(env, *TWO, "--resume", str(run_dir)), env=env, capture_output=True, text=True, timeout=180)
    assert resumed.returncode == EXIT_OK, resumed.stderr[-3000:]
    assert "[fit] resumed at step" in resumed.stderr
    a, b = final_state(reference), final_state(run_dir)
    assert a.keys() == b.keys() and "rank-1/rng/torch_cpu" in a
    assert all(a[k].equal(b[k]) for k in a), [k for k in a if not a[k].equal(b[k])]
    assert set(list_run_dirs(runs)) == {reference, run_dir}


@pytest.mark.parametrize("reported", [False, True], ids=["counted-by-the-loop", "reported-by-the-step"])
def test_throughput_under_two_processes_counts_the_samples_both_ranks_trained_on(env, tmp_path, reported):
    """A dataset of 5 rows, smaller than its batch of 8: every step trains on the 5 (3 on rank 0, 2 on rank 1).
    samples/s and steps/s share their interval, so their ratio is the samples per step the run logged: 5,
    not the configured batch (8) nor rank 0's share times the world (6). A step sleeping 0.3 s bounds steps/s."""
    sleep = 0.3
    done = subprocess.run(voltx_run(env, *TWO, "epochs=2", "rows=5", "batch_size=8", "run.log_every=1", "run.telemetry_interval=0",
                                    f"sleep={sleep}", f"report_batch_size={str(reported).lower()}"),
                          env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    records = steps(run_dir)
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert r["samples_per_sec"] / r["steps_per_sec"] == pytest.approx(5.0)
        assert r["steps_per_sec"] <= 1 / sleep  # one step per interval at most: the world size multiplies no step


def test_a_killed_rank_takes_the_job_down_with_a_clear_event(env, tmp_path):
    """Under fsdp with 2 micro-batches a step (one reduce-scatter, in the last one's backward), so the survivor may be
    inside one of FSDP2's own all-gathers or reduce-scatters when its peer dies."""
    proc = subprocess.Popen(voltx_run(env, *TWO, *SMALL, *FSDP[:4], "hardware.grad_accum=2", "sleep=0.05", "hardware.collective_timeout=30"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = wait_for_step(tmp_path / "runs", 3, proc)
    rank0 = load_manifest(run_dir).record.pid
    (rank1,) = [c for c in psutil.Process(proc.pid).children() if c.pid != rank0]
    rank1.kill()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_RANK_LOST, err[-3000:]
    assert "rank 1 was killed by SIGKILL" in err and "Traceback" not in err, err
    record = load_manifest(run_dir).record
    assert record.status == "failed" and record.exit_code == EXIT_RANK_LOST
    assert load_manifest(run_dir).raw["hardware"]["fit"]["micro_batches"] == 2
    assert "rank_lost" in [e["kind"] for e in events(run_dir)]


def test_more_processes_than_gpus_is_refused_before_anything_is_written(cli_in_process, tmp_path):
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    done = cli_in_process("run", "translator", "--nproc-per-node", str(gpus + 2), "hardware.device=cuda",
                          env={"VOLTX_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode == EXIT_USAGE and f"--nproc-per-node {gpus + 2} but this machine has {gpus} CUDA device(s)" in done.stderr
    assert "hardware.device=cpu" in done.stderr and not (tmp_path / "runs").exists()


def test_unreachable_rendezvous_endpoint_times_out_with_69(cli_in_process, tmp_path):
    done = cli_in_process("run", "translator", "--nproc-per-node", "1", "--nnodes", "2", "--node-rank", "1",
                          "--rdzv-endpoint", "127.0.0.1:9", "--rdzv-timeout", "2", env={"VOLTX_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode == EXIT_UNAVAILABLE, done.stderr[-2000:]
    assert "rendezvous at 127.0.0.1:9 failed within 2 s" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_a_chain_runs_once_and_hands_the_options_to_its_phases(cli_in_process, tmp_path, monkeypatch):
    import voltx.train.launcher as launcher
    import voltx.train.runner as runner

    asked = []
    monkeypatch.setattr(launcher, "launch", lambda *a, **k: pytest.fail("a chain must not be started as N processes"))
    monkeypatch.setattr(runner, "execute", lambda req, plugins=None: asked.append(req) or 0)  # the chain itself: its own tests
    done = cli_in_process("run", "curriculum", *TWO, "hardware.device=cpu", env={"VOLTX_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert [(r.phase, r.launch) for r in asked] == [("curriculum", tuple(TWO))]
    assert "curriculum runs as one process; each phase it starts trains as 2 processes on the CPU with gloo" in done.stderr


def test_a_chain_over_several_nodes_is_refused_before_anything_is_written(cli_in_process, tmp_path):
    done = cli_in_process("run", "curriculum", "--nproc-per-node", "1", "--nnodes", "2", "--rdzv-endpoint", "127.0.0.1:9",
                          env={"VOLTX_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode == EXIT_USAGE and "cannot span --nnodes 2" in done.stderr, done.stderr[-2000:]
    assert "voltx run <phase> --nnodes 2" in done.stderr and not (tmp_path / "runs").exists()


def test_launch_options_and_exit_codes():
    from voltx.train.launcher import Launch, job_exit_code

    with pytest.raises(UsageError, match="--rdzv-endpoint HOST:PORT"):
        Launch(2, 2, 0, None).check()
    with pytest.raises(UsageError, match="--node-rank 2 is not a node"):
        Launch(1, 2, 2, "h:1").check()
    assert Launch(2, 2, 1, "h:29400", 30).argv() == ["--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1",
                                                     "--rdzv-endpoint", "h:29400", "--rdzv-timeout", "30"]
    assert job_exit_code({0: EXIT_PREEMPTED, 1: EXIT_PREEMPTED}) == (EXIT_PREEMPTED, None)
    assert job_exit_code({0: EXIT_RANK_LOST, 1: -9})[0] == EXIT_RANK_LOST
    assert job_exit_code({0: -15, 1: -9}) == (EXIT_RANK_LOST, "rank 1 was killed by SIGKILL")  # rank 0 got the launcher's SIGTERM after
    assert job_exit_code({0: EXIT_RANK_LOST, 1: 78}) == (78, "rank 1 failed with exit 78 (its output above says why)")


def test_fsdp_is_refused_for_a_model_too_small_to_shard():
    from voltx.train.sharding import check

    check({"vfn": 51_685_632}, 2, 10_000_000, "phase f3")
    with pytest.raises(ConfigError, match="only 20 parameters .*fewer than hardware.fsdp_min_parameters = 10,000,000"):
        check({"vfn": 20}, 2, 10_000_000, "phase f3")
    with pytest.raises(ConfigError, match="phase translator names no module to shard"):
        check({}, 2, 0, "phase translator")


@pytest.mark.parametrize("phase, overrides, says", [
    ("translator", [], "phase translator names no module to shard"),
    ("f3", ["vfn_hidden=16", "vfn_blocks=1"], "the modules phase f3 shards have only"),
])
def test_fsdp_is_refused_by_the_launcher_before_anything_is_written(cli_in_process, tmp_path, phase, overrides, says):
    done = cli_in_process("run", phase, "--nproc-per-node", "2", "hardware.strategy=fsdp", *overrides, env={"VOLTX_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode == 78 and says in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "runs").exists()


F3_TINY = ['reasoning_data=["gen:scan_simple_gen?count=32", "gen:babi_qa1_gen?count=8"]', "eval_max_examples=4", "lang_from=none",
           "vocab_size=300", "max_seq_len=64", "epochs=1", "batch_size=16", "warmup=1", "vfn_hidden=16", "vfn_blocks=1",
           "time_embed_freqs=4", "decoder_max_len=96", "renderer_epochs=1", "rar_max_iterations=2", "run.telemetry_interval=0"]


def test_translator_and_f3_tiny_runs_finish_under_two_processes(tmp_path, stdlib_pairs_jsonl):
    """The built-in phases train through the shared loop, so they get data parallelism without code of their own;
    F3 runs with hardware.strategy = fsdp: its ScaledVfn sharded by FSDP2, evaluated on both ranks, its artifact gathered.
    Low precision under fsdp over gloo is the fp16 stop/resume test above (bf16 is the same MixedPrecisionPolicy path,
    and on a CPU without AVX-512 it would double this test's time); micro-batches under fsdp, the killed-rank test."""
    env = {**os.environ, "VOLTX_RUNS_DIR": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1"}
    translator = [f"data={json.dumps(str(stdlib_pairs_jsonl))}", *TINY_TRANSLATOR, "max_examples=64", "encoder.epochs=1"]
    f3 = [*F3_TINY, "hardware.strategy=fsdp", "hardware.fsdp_min_parameters=0"]  # the renderer trains as ddp, the reasoning VFN sharded
    for phase, overrides in (("translator", translator), ("f3", f3)):
        done = subprocess.run([sys.executable, "-m", "voltx", "run", phase, *TWO, "--progress", "plain", *overrides],
                              env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == EXIT_OK, (phase, done.stderr[-3000:])
        (run_dir,) = [d for d in list_run_dirs(tmp_path / "runs") if d.parent.name == phase]
        assert load_manifest(run_dir).record.status == "finished"
        assert [r["step"] for r in steps(run_dir)] == sorted({r["step"] for r in steps(run_dir)})  # one stream, no duplicates
    assert re.match(r"fsdp: vfn \([\d,]+ parameters\) sharded over 2 processes", load_manifest(run_dir).raw["hardware"]["reasoning"]["strategy"])
    assert "[renderer] hardware.strategy = fsdp: this stage names no module to shard; it trains data parallel" in done.stderr
