"""One test (or a few) per hook in voltx/hookspecs.py, through the toy phase's real runs."""

from __future__ import annotations

import csv
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_support import HELLO_SOURCE, REPO, TOY_SOURCE, TOY_STEPS, cli_json, install, load_source, only_run, read_jsonl, run_cli

from voltx import hookimpl, hookspecs
from voltx.errors import EXIT_INTERNAL, EXIT_PREFLIGHT, ConfigError, PreflightError, UsageError
from voltx.plugins import PluginSet, load_plugins
from voltx.runs.layout import load_manifest
from voltx.plugin_specs import AlertRuleSpec, ConverterSpec, SinkSpec, StrandSpec, resolve
from voltx.runs.records import Deliverable, End, StepRecord


@pytest.fixture
def toy(monkeypatch):
    """The toy phase plugin as an in-process module named voltx_toy."""
    return load_source(monkeypatch, "voltx_toy", TOY_SOURCE)


def run_toy(tmp_path: Path, toy, *plugins: tuple[str, object], overrides: tuple[str, ...] = ()) -> tuple[int, Path, PluginSet]:
    """Run the toy phase in this process with ``plugins`` loaded beside it."""
    from voltx.train.runner import RunRequest, execute

    ps = load_plugins(extra=[("toy", toy), *plugins], refresh=True)
    assert ps.failures == []
    runs = tmp_path / "runs"
    code = execute(RunRequest(phase="toy", runs_dir=str(runs), overrides=("run.log_every=1", *overrides)), plugins=ps)
    return code, only_run(runs, "toy"), ps


def test_every_hookspec_is_tested_here():
    hooks = sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith(("register_", "on_")))
    tested = {n.removeprefix("test_").split("__")[0] for n in globals() if n.startswith("test_")}
    assert hooks == sorted(h for h in hooks if h in tested), f"untested hooks: {set(hooks) - tested}"


# --- register_phases ----------------------------------------------------------------------


def test_register_phases__runs_through_real_entry_points(tmp_path):
    env = install(tmp_path / "site", "voltx-toy", "voltx_toy", TOY_SOURCE)
    runs = tmp_path / "runs"
    proc = run_cli("run", "toy", "lr=0.02", "--runs-dir", str(runs), env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run(runs, "toy")
    manifest = load_manifest(run_dir).raw
    assert (manifest["phase"], manifest["status"], manifest["exit_code"]) == ("toy", "finished", 0)
    config = (run_dir / "config.toml").read_text()
    assert "[toy]" in config and "lr = 0.02" in config and "batch_size = 8" in config
    assert len(read_jsonl(run_dir / "metrics.jsonl")) >= 2  # first step of each epoch at least
    [verdict] = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "deliverable"]
    assert verdict["metric"] == "fit/mse" and verdict["passed"] is True


def test_register_phases__config_class_is_the_phase_table(tmp_path, toy):
    code, run_dir, _ = run_toy(tmp_path, toy, overrides=("epochs=1", "toy.batch_size=16"))
    assert code == 0
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == 64 // 16
    with pytest.raises(ConfigError, match="batch_sise"):
        run_toy(tmp_path / "again", toy, overrides=("batch_sise=4",))


# --- register_converters / register_strands ----------------------------------------------


class Registers:
    """A converter and a strand; the converter's factory names a module that does not exist,
    which is fine until it is used (specs are lazy)."""

    @hookimpl
    def register_converters(self, register):
        register(ConverterSpec("wiki-triples", "Wikidata dump -> triples", ("triples",), "voltx_missing_heavy_module:Reader", hub_name="org/wiki"))

    @hookimpl
    def register_strands(self, register):
        register(StrandSpec("adder", "adds two integers exactly", lambda: (lambda a, b: a + b)))


def test_register_converters():
    ps = load_plugins(extra=[("reg", Registers())], refresh=True)
    assert ps.failures == []
    spec = ps.get("converters", "wiki-triples")
    assert (spec.formats, spec.hub_name, ps.provider("converters", "wiki-triples")) == (("triples",), "org/wiki", "reg")
    assert ps.plugins["reg"].provides["converters"] == ["wiki-triples"]
    with pytest.raises(ModuleNotFoundError):  # imported only when used
        resolve(spec.factory)


def test_register_strands():
    ps = load_plugins(extra=[("reg", Registers())], refresh=True)
    strand = resolve(ps.get("strands", "adder").factory)()
    assert strand(2, 40) == 42
    assert ps.plugins["reg"].provides["strands"] == ["adder"]


# --- register_sinks -----------------------------------------------------------------------


class Recorder:
    """A third-party sink: keeps every record it is given."""

    def __init__(self):
        self.records: list = []
        self.run_dirs: list[Path] = []
        self.closed = False

    def factory(self, run_dir):
        self.run_dirs.append(Path(run_dir))
        return self

    def write(self, record) -> None:
        self.records.append(record)

    def close(self) -> None:
        self.closed = True

    @hookimpl
    def register_sinks(self, register):
        register(SinkSpec("recorder", "keeps records in memory", self.factory))


def test_register_sinks__builtin_csv(tmp_path, toy):
    code, run_dir, _ = run_toy(tmp_path, toy, overrides=('run.sinks=["csv"]',))
    assert code == 0
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    assert len(metrics) == TOY_STEPS
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == TOY_STEPS
    assert {"step", "stage", "losses/loss", "lr", "samples_per_sec"} <= set(rows[0])
    assert [int(r["step"]) for r in rows] == [m["step"] for m in metrics]
    assert float(rows[-1]["losses/loss"]) == pytest.approx(metrics[-1]["losses"]["loss"])


def test_register_sinks__no_csv_unless_enabled(tmp_path, toy):
    code, run_dir, _ = run_toy(tmp_path, toy)
    assert code == 0
    assert not (run_dir / "metrics.csv").exists()


def test_register_sinks__third_party_gets_every_record_of_the_run_store(tmp_path, toy):
    recorder = Recorder()
    code, run_dir, _ = run_toy(tmp_path, toy, ("recorder", recorder), overrides=('run.sinks=["recorder", "csv"]',))
    assert code == 0
    assert recorder.run_dirs == [run_dir]
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    events = read_jsonl(run_dir / "events.jsonl")
    steps = [r for r in recorder.records if isinstance(r, StepRecord)]
    assert [r.step for r in steps] == [m["step"] for m in metrics] == list(range(1, TOY_STEPS + 1))
    assert steps[0].losses == metrics[0]["losses"]
    # every events.jsonl line too, as its record type, in the order written: start ... deliverable ... end
    got = [r.kind for r in recorder.records if not isinstance(r, StepRecord)]
    assert got == [e["kind"] for e in events] and got[0] == "start" and got[-1] == "end"
    [verdict] = [r for r in recorder.records if isinstance(r, Deliverable)]
    assert (verdict.metric, verdict.passed) == ("fit/mse", True)
    assert isinstance(recorder.records[-1], End) and recorder.records[-1].status == "finished"
    assert recorder.closed


def test_register_sinks__from_the_command_line_and_saved_for_the_resume(tmp_path, toy):
    from voltx.train.runner import RunRequest, execute

    recorder = Recorder()
    ps = load_plugins(extra=[("toy", toy), ("recorder", recorder)], refresh=True)
    runs = tmp_path / "runs"
    assert execute(RunRequest(phase="toy", runs_dir=str(runs), overrides=("run.log_every=1",), sinks=("recorder",)), plugins=ps) == 0
    assert len([r for r in recorder.records if isinstance(r, StepRecord)]) == TOY_STEPS
    assert 'sinks = ["recorder"]' in (only_run(runs, "toy") / "config.toml").read_text()


def test_register_sinks__a_failing_sink_is_an_alert_and_the_run_finishes(tmp_path, toy):
    class Failing:
        def __init__(self, run_dir):
            pass

        def write(self, record):
            if isinstance(record, StepRecord) and record.step == 3:
                raise ConnectionError("tracker unreachable")

        def close(self):
            pass

    class Plugin:
        @hookimpl
        def register_sinks(self, register):
            register(SinkSpec("failing", "fails at step 3", Failing))

    code, run_dir, _ = run_toy(tmp_path, toy, ("failing", Plugin()), overrides=('run.sinks=["failing"]',))
    assert code == 0
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == TOY_STEPS
    [alert] = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "alert" and e["rule"] == "sink"]  # one, however many steps follow
    assert alert["sink"] == "failing" and "ConnectionError: tracker unreachable" in alert["message"]
    assert "ALERT [sink] sink 'failing' failed" in (run_dir / "stdout.log").read_text()


def test_register_sinks__unknown_sink_refuses_to_start(tmp_path, toy):
    with pytest.raises(UsageError, match="did you mean 'csv'"):
        run_toy(tmp_path, toy, overrides=('run.sinks=["cvs"]',))
    assert not (tmp_path / "runs" / "toy").exists()  # no run directory: nothing started


class NotInstalled:
    @hookimpl
    def register_sinks(self, register):
        register(SinkSpec("wandb-ish", "", "voltx_no_such_tracker:Sink", requires=("voltx_no_such_tracker",), extra="wandb"))


def test_register_sinks__not_installed_sink_refuses_to_start_with_the_pip_line(tmp_path, toy):
    with pytest.raises(PreflightError, match=r'sink \'wandb-ish\' needs voltx_no_such_tracker, which is not installed: pip install "voltx\[wandb\]"') as err:
        run_toy(tmp_path, toy, ("ish", NotInstalled()), overrides=('run.sinks=["wandb-ish"]',))
    assert err.value.exit_code == EXIT_PREFLIGHT  # the CLI exits with it (README's table)
    assert not (tmp_path / "runs" / "toy").exists()


# --- register_alert_rules -----------------------------------------------------------------


class StepThree:
    def __init__(self, run_dir):
        self.run_dir = run_dir

    def check(self, record: dict) -> str | None:
        return "step three reached" if record["step"] == 3 else None


class AlertRules:
    @hookimpl
    def register_alert_rules(self, register):
        register(AlertRuleSpec("step-three", "fires on step 3", StepThree, severity="error"))


def test_register_alert_rules(tmp_path, toy):
    code, run_dir, _ = run_toy(tmp_path, toy, ("rules", AlertRules()), overrides=('run.alert_rules=["step-three", "loss-spike"]',))
    assert code == 0
    alerts = [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "alert"]
    assert len(alerts) == 1, alerts
    assert (alerts[0]["rule"], alerts[0]["step"], alerts[0]["severity"], alerts[0]["message"]) == ("step-three", 3, "error", "step three reached")
    assert "ALERT [step-three] step 3" in (run_dir / "stdout.log").read_text()


def test_register_alert_rules__only_enabled_rules_run(tmp_path, toy):
    code, run_dir, _ = run_toy(tmp_path, toy, ("rules", AlertRules()), overrides=('run.alert_rules=["loss-spike"]',))
    assert code == 0
    assert not [e for e in read_jsonl(run_dir / "events.jsonl") if e["kind"] == "alert"]


# --- register_commands --------------------------------------------------------------------


@pytest.fixture
def hello_env(tmp_path) -> dict:
    return install(tmp_path / "site", "voltx-hello", "voltx_hello", HELLO_SOURCE)


def test_register_commands__listed_in_help(hello_env):
    proc = run_cli("--help", env={**hello_env, "COLUMNS": "200"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "hello" in proc.stdout and "print a greeting" in proc.stdout
    plugins = {p["name"]: p for p in cli_json("plugins", env=hello_env)["plugins"]}
    assert plugins["voltx_hello"]["provides"] == {"commands": ["hello"]}


def test_register_commands__runs_with_the_handlers_exit_code(hello_env):
    proc = run_cli("hello", "--name", "ada", "--code", "3", env=hello_env, timeout=60)
    assert (proc.returncode, proc.stdout) == (3, "hello ada\n"), proc.stderr
    proc = run_cli("hi", env=hello_env, timeout=60)  # the alias; None from a handler would also be 0
    assert (proc.returncode, proc.stdout) == (0, "hello world\n"), proc.stderr


# --- register_record_formats --------------------------------------------------------------


def test_register_record_formats__listed_and_known_to_the_data_tools(tmp_path):
    doc = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    [source] = [m for m in re.findall(r"```python\n(.*?)```", doc, re.S) if "voltx-pairs" in m]
    env = install(tmp_path / "site", "voltx-pairs", "voltx_pairs", source)
    plugins = {p["name"]: p for p in cli_json("plugins", env=env)["plugins"]}
    assert plugins["voltx_pairs"]["provides"] == {"record_formats": ["pairs"]}
    code = ("from voltx.data.formats import validate_dict\n"
            "try:\n    validate_dict('pairs', {'input': 'x'})\nexcept Exception as e:\n    print(e)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "field 'output': missing (required for pairs)", proc.stderr


# --- lifecycle hooks ----------------------------------------------------------------------


class Lifecycle:
    def __init__(self):
        self.calls: list[tuple] = []

    @hookimpl
    def on_run_start(self, run):
        self.calls.append(("start", run.dir, run.manifest["phase"], run.manifest["status"]))

    @hookimpl
    def on_step_logged(self, run, record):
        self.calls.append(("step", run.dir, record["step"], record["losses"]["loss"]))

    @hookimpl
    def on_run_end(self, run, status):
        self.calls.append(("end", run.dir, status))


def test_on_run_start(tmp_path, toy):
    life = Lifecycle()
    code, run_dir, _ = run_toy(tmp_path, toy, ("life", life))
    assert code == 0
    assert life.calls[0] == ("start", run_dir, "toy", "running")
    assert [c[0] for c in life.calls].count("start") == 1


def test_on_step_logged(tmp_path, toy):
    life = Lifecycle()
    code, run_dir, _ = run_toy(tmp_path, toy, ("life", life))
    assert code == 0
    steps = [c for c in life.calls if c[0] == "step"]
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    assert [(s[2], s[3]) for s in steps] == [(m["step"], m["losses"]["loss"]) for m in metrics]
    assert len(steps) == TOY_STEPS and all(s[1] == run_dir for s in steps)


def test_on_run_end(tmp_path, toy):
    life = Lifecycle()
    code, run_dir, _ = run_toy(tmp_path, toy, ("life", life))
    assert code == 0
    assert life.calls[-1] == ("end", run_dir, "finished")
    assert [c[0] for c in life.calls].count("end") == 1


def test_on_run_end__failed_run(tmp_path, toy):
    life = Lifecycle()
    code, run_dir, _ = run_toy(tmp_path, toy, ("life", life), overrides=("fail=true",))
    assert code == EXIT_INTERNAL
    assert [c[0] for c in life.calls] == ["start", "end"]
    assert life.calls[-1] == ("end", run_dir, "failed")
    assert load_manifest(run_dir).record.status == "failed"


def test_on_run_end__implementation_may_take_fewer_arguments(tmp_path, toy):
    statuses = []

    class StatusOnly:
        @hookimpl
        def on_run_end(self, status):  # the spec's `run` left out
            statuses.append(status)

    code, _, _ = run_toy(tmp_path, toy, ("status-only", StatusOnly()))
    assert (code, statuses) == (0, ["finished"])
