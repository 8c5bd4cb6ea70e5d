"""Progress over the whole run (a phase with two trained stages), the line that tells a
resumable checkpoint from a weight export, and the closing lines of a finished run."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass

import pytest

from voltx import hookimpl
from voltx.plugins import load_plugins
from voltx.runs.layout import list_run_dirs, load_manifest
from voltx.runs.records import StepRecord
from voltx.runs.store import eta_seconds
from voltx.plugin_specs import Deliverable, PhaseSpec
from voltx.train.runner import RunRequest, execute


@dataclass
class TwoStageConfig:
    rows: int = 48
    batch_size: int = 8
    first_epochs: int = 2
    second_epochs: int = 1
    meets_target: bool = False
    """Report an mse of 0 (the deliverable passes); by default the target (< 1e-9) is missed, as a
    quick look misses a plan's targets."""
    eval_sleep: float = 0.0
    """Seconds each evaluation takes on top of its work (an evaluation that costs more than its epoch's steps)."""


def run_two_stages(ctx):
    """Two stages, the way the translator trains an encoder then a decoder."""
    import torch

    from voltx.train.batches import EpochBatches, steps_per_epoch
    from voltx.train.loop import Stage, fit

    cfg = ctx.settings
    per_epoch = steps_per_epoch(cfg.rows, cfg.batch_size)
    ctx.plan_steps({"first": per_epoch * cfg.first_epochs, "second": per_epoch * cfg.second_epochs})
    x = torch.randn(cfg.rows, 4, generator=torch.Generator().manual_seed(0))
    y = x.sum(dim=1, keepdim=True)
    for name, epochs in (("first", cfg.first_epochs), ("second", cfg.second_epochs)):
        if ctx.stage_done(name):
            continue
        model = torch.nn.Linear(4, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        batches = EpochBatches(list(range(cfg.rows)), cfg.batch_size, ctx.config.run.seed, lambda idx: torch.tensor(idx))

        def step(idx, model=model):
            return {"loss": torch.nn.functional.mse_loss(model(x[idx]), y[idx])}

        def evaluate(model=model):
            time.sleep(cfg.eval_sleep)
            return {"mse": 0.0 if cfg.meets_target else float(torch.nn.functional.mse_loss(model(x), y)),
                    "mse_zero": float(y.pow(2).mean())}

        fit(ctx, Stage(name, model, opt, batches, epochs, step, lambda s: 0.05, evaluate=evaluate))
        ctx.mark_stage_done(name)


@hookimpl
def register_phases(register):
    register(PhaseSpec("twostage", "two trained stages", run_two_stages, TwoStageConfig,
                       deliverables=(Deliverable("second/mse", "<", 1e-9, "an unreachable target", baselines=("second/mse_zero",)),)))


@pytest.fixture
def plugins():
    return load_plugins(extra=[("twostage", sys.modules[__name__])], refresh=True)


def run_log(tmp_path, plugins, preset=None, config=None, overrides=()) -> tuple[int, str, dict]:
    code = execute(RunRequest(phase="twostage", preset=preset, config_path=config, runs_dir=str(tmp_path / "runs"),
                              progress="plain", overrides=overrides), plugins=plugins)
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    return code, (run_dir / "stdout.log").read_text(), {"dir": run_dir, **load_manifest(run_dir).raw}


def test_progress_and_total_steps_cover_every_stage(tmp_path, plugins):
    code, log, manifest = run_log(tmp_path, plugins)
    assert code == 0
    # 48 rows / 8 = 6 steps per epoch: 2 epochs of "first", 1 of "second" = 18 steps in all
    progress = re.findall(r"^\[run\] step (\d+)/(\d+) \(\d+%\) in (\w+) \(stage (\d)/2\)(, ETA \S+ for the whole run)?$", log, re.M)
    assert [(int(s), int(t), name, int(i), bool(eta)) for s, t, name, i, eta in progress] == [
        (6, 18, "first", 1, True), (12, 18, "first", 1, True), (18, 18, "second", 2, False)]
    records = [json.loads(line) for line in (manifest["dir"] / "metrics.jsonl").read_text().splitlines()]
    assert {r["total_steps"] for r in records} == {18}  # `voltx status` and the console's ETA read this
    assert manifest["total_steps"] == 18


def test_the_eta_counts_evaluation_time_on_the_terminal_and_in_the_run_store(tmp_path, plugins):
    """Steps take milliseconds and each evaluation 0.5 s: the epochs left evaluate too, so an ETA at the
    training speed alone (a few ms per step) would promise the rest at once. The ``[run]`` line and the
    step records (what ``voltx status``, the runs screen and the run header read, through the same
    ``eta_seconds``) both assume the wall pace so far, evaluations included."""
    sleep = 0.5
    code, log, manifest = run_log(tmp_path, plugins, overrides=(f"eval_sleep={sleep}", "run.log_every=1"))
    assert code == 0
    # after epoch 1 (steps 1-6, one evaluation) 12 steps and 2 evaluations are left: at least 12 * 0.5 / 6 = 1 s
    (eta_line,) = re.findall(r"^\[run\] step 6/18 .*, ETA (\d+)m(\d+)s for the whole run$", log, re.M)
    assert int(eta_line[0]) * 60 + int(eta_line[1]) >= 12 * sleep / 6
    lines = (manifest["dir"] / "metrics.jsonl").read_text().splitlines()
    records = {r.step: r for r in (StepRecord.parse(json.loads(line)) for line in lines)}
    seventh = records[7]  # logged after the first evaluation: its pace counts it (7 steps in >= 0.5 s)
    assert eta_seconds("running", seventh.step, seventh.total_steps, seventh.steps_per_sec, seventh.wall_steps_per_sec) >= 11 * sleep / 7


def test_checkpoint_lines_name_the_resumable_checkpoint(tmp_path, plugins):
    _, log, manifest = run_log(tmp_path, plugins)
    lines = re.findall(r"^\[(\w+)\] resumable checkpoint: (\S+) \(step (\d+); --resume continues from here\)$", log, re.M)
    assert [(stage, int(step)) for stage, _, step in lines] == [("first", 6), ("first", 12), ("second", 18)]
    for _, path, step in lines:
        assert path == str(manifest["dir"] / "checkpoints" / f"step-{step}")


QUICK = "[twostage.presets.quick]\nrows = 16\n\n[twostage.presets.longer]\nfirst_epochs = 1\n"


def test_a_quick_preset_run_says_why_deliverables_fail_and_what_to_do_next(tmp_path, plugins):
    config = tmp_path / "cfg.toml"
    config.write_text(QUICK)
    code, log, manifest = run_log(tmp_path, plugins, preset="quick", config=str(config))
    assert code == 0
    tail = log.splitlines()[-3:]
    assert tail[0].startswith("voltx: run finished:") and "(0/1 deliverables passed)" in tail[0]
    assert ("1 deliverable(s) beat their baselines but missed the plan's target, as expected: preset 'quick' is a short "
            "look that shows learning, not the plan's targets") in tail[1]
    assert "`voltx run twostage`" in tail[1]
    assert tail[2] == (f"voltx: next: `voltx report {manifest['dir']}` (metrics, deliverables), "
                       f"`voltx-console --run {manifest['dir']}` (curves, every run; `n` launches another)")


def test_other_runs_with_failed_deliverables_get_no_quick_excuse(tmp_path, plugins):
    config = tmp_path / "cfg.toml"
    config.write_text(QUICK)
    _, log, _ = run_log(tmp_path, plugins, preset="longer", config=str(config))
    assert "as expected" not in log
    assert "voltx: 1 of 1 deliverable(s) missed their target; the report shows by how much." in log
    assert "voltx: next: `voltx report " in log


def test_a_run_that_passes_only_names_the_next_steps(tmp_path, plugins):
    code = execute(RunRequest(phase="twostage", overrides=("meets_target=true",), runs_dir=str(tmp_path / "runs"),
                              progress="plain"), plugins=plugins)
    assert code == 0
    (run_dir,) = list_run_dirs(tmp_path / "runs")
    log = (run_dir / "stdout.log").read_text()
    assert "missed" not in log and "voltx: next: `voltx report " in log


def test_a_verdict_lost_to_a_no_model_method_is_never_called_expected(tmp_path):
    from voltx.train.closing import closing_lines

    lost = {"metric": "f3/denoise", "passed": False, "beat_baseline": False}
    short = {"metric": "f3/scan", "passed": False, "beat_baseline": True}
    lines = closing_lines("f3", "quick", tmp_path, [lost, short, {"metric": "ok", "passed": True, "beat_baseline": True}])
    assert lines[0] == ("voltx: 1 deliverable(s) did not beat a method that needs no trained model (f3/denoise): "
                        "the report shows the baseline and the margin.")
    assert lines[1].startswith("voltx: 1 deliverable(s) beat their baselines but missed the plan's target, as expected")
    assert not any("as expected" in line for line in closing_lines("f3", "quick", tmp_path, [lost]))


def test_a_phase_says_where_its_targets_can_be_met(tmp_path):
    from voltx.train.closing import closing_lines

    short = {"metric": "lvm/cosine", "passed": False, "beat_baseline": True}
    default = closing_lines("f3", "quick", tmp_path, [short])[0]
    own = closing_lines("lvm", "quick", tmp_path, [short], "on the handoff's vectors")[0]
    assert "`voltx run f3` (sized for a GPU)" in default
    assert own.endswith("The targets can be met on the handoff's vectors.") and "GPU" not in own
