"""The plugin loader: real entry points, listing, failures, strict mode, disabling, validation."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
from plugin_support import TOY_SOURCE, cli_json, install, run_cli, without_repo_distributions

from voltx import hookimpl
from voltx.errors import EXIT_USAGE, UsageError
from voltx.plugins import BUILTIN_COMMANDS, load_plugins
from voltx.plugin_specs import CommandSpec, ConverterSpec, PhaseSpec, SinkSpec

BUILTINS = {"translator", "alerts", "sinks"}
BROKEN_SOURCE = 'raise RuntimeError("boom from plugin")\n'


def by_name(listing: dict) -> dict[str, dict]:
    return {p["name"]: p for p in listing["plugins"]}


@pytest.fixture
def toy_env(tmp_path) -> dict:
    return install(tmp_path / "site", "voltx-toy", "voltx_toy", TOY_SOURCE, version="0.3")


@pytest.fixture
def broken_env(tmp_path) -> dict:
    return install(tmp_path / "site", "voltx-broken", "voltx_broken", BROKEN_SOURCE, entry_name="broken")


# --- listing ------------------------------------------------------------------------------


def test_third_party_phase_is_listed_with_its_distribution(toy_env):
    listing = cli_json("plugins", env=toy_env)
    toy = by_name(listing)["voltx_toy"]
    assert toy["builtin"] is False
    assert toy["distribution"] == "voltx-toy"
    assert toy["version"] == "0.3"
    assert toy["module"] == "voltx_toy"
    assert toy["hooks"] == ["register_phases"]
    assert toy["status"] == "loaded"
    assert toy["provides"] == {"phases": ["toy"]}
    assert listing["failures"] == []

    phases = {p["name"]: p for p in cli_json("phases", env=toy_env)["phases"]}
    assert {"toy", "translator"} <= set(phases)
    assert phases["toy"]["builtin"] is False
    assert phases["toy"]["distribution"] == "voltx-toy"
    assert phases["toy"]["plugin"] == "voltx_toy"
    assert phases["toy"]["deliverables"] == [{"metric": "fit/mse", "op": "<", "threshold": 100.0}]


def test_plain_listing_shows_third_party_plugin(toy_env):
    proc = run_cli("plugins", env={**toy_env, "COLUMNS": "250"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "voltx_toy" in proc.stdout and "voltx-toy" in proc.stdout
    proc = run_cli("phases", env={**toy_env, "COLUMNS": "250"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "toy" in proc.stdout and "voltx-toy 0.3" in proc.stdout


def test_builtins_are_listed_as_builtin():
    plugins = by_name(cli_json("plugins"))
    assert BUILTINS <= set(plugins)
    for name in BUILTINS:
        assert plugins[name]["builtin"] is True, name
        assert plugins[name]["distribution"] == "voltx", name
        assert plugins[name]["status"] == "loaded", name
    assert plugins["translator"]["provides"]["phases"] == ["translator"]
    assert "csv" in plugins["sinks"]["provides"]["sinks"]
    assert "loss-spike" in plugins["alerts"]["provides"]["alert_rules"]


def test_in_process_plugins_are_added_after_entry_points():
    class Extra:
        @hookimpl
        def register_sinks(self, register):
            register(SinkSpec("null", "discards records", lambda run_dir: None))

    ps = load_plugins(extra=[("extra", Extra())], refresh=True)
    info = ps.plugins["extra"]
    assert (info.distribution, info.builtin, info.status) == ("(in-process)", False, "loaded")
    assert ps.provider("sinks", "null") == "extra"
    assert BUILTINS <= set(ps.plugins)
    assert load_plugins() is ps  # cached per process
    assert load_plugins(refresh=True) is not ps


# --- failures -----------------------------------------------------------------------------


def test_plugin_that_raises_on_import_is_a_failure_not_a_crash(broken_env):
    proc = run_cli("plugins", "--json", env=broken_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "boom from plugin" in proc.stderr  # the warning
    listing = json.loads(proc.stdout)
    assert by_name(listing)["broken"]["status"] == "failed"
    assert by_name(listing)["broken"]["distribution"] == "voltx-broken"
    [failure] = listing["failures"]
    assert failure == {"plugin": "broken", "distribution": "voltx-broken", "stage": "import", "error": "RuntimeError: boom from plugin"}
    assert all(by_name(listing)[n]["status"] == "loaded" for n in BUILTINS)

    phases = cli_json("phases", env=broken_env)
    assert "translator" in [p["name"] for p in phases["phases"]]


def test_unknown_phase_error_names_plugins_that_failed(broken_env):
    proc = run_cli("run", "nosuchphase", env=broken_env, timeout=60)
    assert proc.returncode == EXIT_USAGE
    assert "Plugins that failed to load: broken" in proc.stderr


def test_strict_mode_reraises(broken_env):
    proc = run_cli("plugins", "--json", env={**broken_env, "VOLTX_STRICT_PLUGINS": "1"}, timeout=60)
    assert proc.returncode != 0
    assert "RuntimeError: boom from plugin" in proc.stderr


def test_strict_mode_with_healthy_plugins_loads(toy_env):
    listing = cli_json("plugins", env={**toy_env, "VOLTX_STRICT_PLUGINS": "1"})
    assert by_name(listing)["voltx_toy"]["status"] == "loaded"


def test_disabled_plugin_is_listed_but_not_loaded(toy_env):
    env = {**toy_env, "VOLTX_DISABLE_PLUGINS": "voltx_toy, sinks"}
    plugins = by_name(cli_json("plugins", env=env))
    assert plugins["voltx_toy"]["status"] == "disabled"
    assert plugins["voltx_toy"]["provides"] == {} and plugins["voltx_toy"]["hooks"] == []
    assert plugins["sinks"]["status"] == "disabled"
    assert plugins["translator"]["status"] == "loaded"
    phases = [p["name"] for p in cli_json("phases", env=env)["phases"]]
    assert "toy" not in phases and "translator" in phases
    proc = run_cli("run", "toy", env=env, timeout=60)
    assert proc.returncode == EXIT_USAGE
    assert "unknown phase 'toy'" in proc.stderr


def test_disabling_a_broken_plugin_silences_it(broken_env):
    proc = run_cli("plugins", "--json", env={**broken_env, "VOLTX_DISABLE_PLUGINS": "broken"}, timeout=60)
    assert proc.returncode == 0
    assert "boom" not in proc.stderr
    assert json.loads(proc.stdout)["failures"] == []


def test_entry_point_name_taken_by_another_distribution_is_a_failure(tmp_path):
    # A third-party distribution whose entry point is called "sinks" must not silently vanish
    # (nor replace the built-in).
    env = install(tmp_path / "site", "voltx-impostor", "voltx_impostor", TOY_SOURCE, entry_name="sinks")
    listing = cli_json("plugins", env=env)
    assert by_name(listing)["sinks"]["distribution"] == "voltx"
    [failure] = listing["failures"]
    assert failure["plugin"] == "sinks" and failure["distribution"] == "voltx-impostor"
    assert "already used by distribution 'voltx'" in failure["error"]


def test_same_distribution_twice_on_path_loads_once(tmp_path):
    install(tmp_path / "a", "voltx-toy", "voltx_toy", TOY_SOURCE)
    env = install(tmp_path / "b", "voltx-toy", "voltx_toy", TOY_SOURCE)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "a"), env["PYTHONPATH"]])
    listing = cli_json("plugins", env=env)
    assert listing["failures"] == []
    assert [p["name"] for p in listing["plugins"]].count("voltx_toy") == 1


# --- hook names and registration validation ----------------------------------------------


class Misspelt:
    @hookimpl
    def register_phase(self, register):  # should be register_phases
        raise AssertionError("never called")

    @hookimpl
    def register_sinks(self, register):
        register(SinkSpec("ok-sink", "still works", lambda run_dir: None))


def test_misspelt_hook_name_names_the_closest_hook():
    ps = load_plugins(extra=[("typo", Misspelt())], refresh=True)
    [failure] = ps.failures
    assert failure.plugin == "typo" and failure.stage == "hook-name"
    assert "unknown hook 'register_phase'" in failure.error
    assert "did you mean 'register_phases'?" in failure.error
    assert ps.plugins["typo"].status == "partial"
    assert ps.provider("sinks", "ok-sink") == "typo"


def test_misspelt_hook_name_through_entry_points(tmp_path):
    source = "from voltx import hookimpl\n\n@hookimpl\ndef on_step_loged(run, record):\n    pass\n"
    listing = cli_json("plugins", env=install(tmp_path / "site", "voltx-typo", "voltx_typo", source))
    [failure] = listing["failures"]
    assert failure["stage"] == "hook-name"
    assert "did you mean 'on_step_logged'?" in failure["error"]
    assert by_name(listing)["voltx_typo"]["status"] == "failed"  # nothing of it works


def test_misspelt_hook_name_is_fatal_in_strict_mode(monkeypatch):
    monkeypatch.setenv("VOLTX_STRICT_PLUGINS", "1")
    with pytest.raises(ValueError, match="did you mean 'register_phases'"):
        load_plugins(extra=[("typo", Misspelt())], refresh=True)


def test_bad_hook_signature_unregisters_the_whole_plugin():
    calls = []

    class BadSignature:
        @hookimpl
        def on_run_end(self, run, status):  # valid, and checked by pluggy before the bad one
            calls.append(status)

        @hookimpl
        def register_phases(self, reg):  # the argument must be called "register"
            raise AssertionError("never called")

    ps = load_plugins(extra=[("badsig", BadSignature())], refresh=True)
    [failure] = ps.failures
    assert failure.stage == "registration" and "reg" in failure.error
    assert ps.plugins["badsig"].status == "failed"
    ps.pm.hook.on_run_end(run=None, status="finished")
    assert calls == []  # a failed plugin's lifecycle hooks never run
    assert ps.pm.get_plugin("badsig") is None



@dataclass
class NoConfig:
    pass


GOOD_PHASE = PhaseSpec("good", "registered before the bad one", "nowhere:run", NoConfig)


def _bad_registrations():
    return {
        "wrong spec type": (lambda register: register(SinkSpec("x", "not a phase", "m:f")), "register_phases expects PhaseSpec objects, got SinkSpec"),
        "duplicate of a built-in": (lambda register: register(PhaseSpec("translator", "dup", "m:f", NoConfig)), "phase 'translator' is already registered by plugin 'translator'"),
        "duplicate in one call": (lambda register: register(GOOD_PHASE), "phase 'good' is already registered by plugin 'bad'"),
        "invalid name": (lambda register: register(PhaseSpec("Bad Name", "caps and a space", "m:f", NoConfig)), "invalid phase name 'Bad Name'"),
        "reserved name": (lambda register: register(PhaseSpec("run", "the [run] table", "m:f", NoConfig)), "phase name 'run' is reserved"),
        "spec refuses itself": (lambda register: register(PhaseSpec("nodc", "config_class not a dataclass", "m:f", dict)), "config_class must be a dataclass"),
    }


@pytest.mark.parametrize("case", list(_bad_registrations()))
def test_bad_registration_is_transactional(case):
    bad_call, message = _bad_registrations()[case]

    class Bad:
        @hookimpl
        def register_phases(self, register):
            register(GOOD_PHASE)
            bad_call(register)

        @hookimpl
        def register_converters(self, register):
            register(ConverterSpec("pairs", "another hook of the same plugin", ("slot_annotated",), "nowhere:Reader"))

    ps = load_plugins(extra=[("bad", Bad())], refresh=True)
    [failure] = ps.failures
    assert (failure.plugin, failure.stage) == ("bad", "register_phases")
    assert message in failure.error
    assert "good" not in ps.specs("phases")  # nothing from the failed hook call
    assert ps.provider("phases", "translator") == "translator"  # the built-in is untouched
    assert ps.provider("converters", "pairs") == "bad"  # the plugin's other hook still works
    assert ps.plugins["bad"].status == "partial"
    assert ps.plugins["bad"].provides == {"converters": ["pairs"]}


def test_a_plugin_whose_only_hook_fails_is_failed_not_partial():
    class OnlyBad:
        @hookimpl
        def register_phases(self, register):
            register(PhaseSpec("Nope", "bad name", "m:f", NoConfig))

    ps = load_plugins(extra=[("onlybad", OnlyBad())], refresh=True)
    assert ps.plugins["onlybad"].status == "failed"
    assert ps.plugins["onlybad"].provides == {}


def test_two_failing_hooks_leave_a_working_plugin_partial():
    class TwoBad:
        @hookimpl
        def register_phases(self, register):
            register("not a spec")

        @hookimpl
        def register_strands(self, register):
            register("not a spec either")

        @hookimpl
        def register_sinks(self, register):
            register(SinkSpec("fine", "works", "m:f"))

    ps = load_plugins(extra=[("twobad", TwoBad())], refresh=True)
    assert [f.stage for f in ps.failures] == ["register_phases", "register_strands"]
    assert ps.plugins["twobad"].status == "partial"


def test_registration_errors_are_fatal_in_strict_mode(monkeypatch):
    class Dup:
        @hookimpl
        def register_sinks(self, register):
            register(SinkSpec("csv", "dup of the built-in", "m:f"))

    monkeypatch.setenv("VOLTX_STRICT_PLUGINS", "1")
    with pytest.raises(ValueError, match="sink 'csv' is already registered by plugin 'sinks'"):
        load_plugins(extra=[("dup", Dup())], refresh=True)


@pytest.mark.parametrize(
    "spec, message",
    [
        (CommandSpec("plugins", "shadows a built-in command", "m:f"), "command name 'plugins' is a built-in voltx command"),
        (CommandSpec("mine", "alias shadows a built-in", "m:f", aliases=("run",)), "command name 'run' is a built-in voltx command"),
        (CommandSpec("train-encoder", "dup of the translator's", "m:f"), "command 'train-encoder' is already registered by plugin 'translator'"),
        (CommandSpec("mine", "bad alias", "m:f", aliases=("Bad Alias",)), "invalid command name 'Bad Alias'"),
    ],
    ids=["builtin-name", "builtin-alias", "duplicate", "bad-alias"],
)
def test_command_names_are_validated(spec, message):
    class Cmd:
        @hookimpl
        def register_commands(self, register):
            register(spec)

    ps = load_plugins(extra=[("cmd", Cmd())], refresh=True)
    [failure] = ps.failures
    assert message in failure.error
    assert ps.plugins["cmd"].provides == {} and ps.plugins["cmd"].status == "failed"


def test_alias_clashing_with_another_plugins_command_is_refused():
    class First:
        @hookimpl
        def register_commands(self, register):
            register(CommandSpec("greet", "first", "m:f", aliases=("hi",)))

    class Second:
        @hookimpl
        def register_commands(self, register):
            register(CommandSpec("hi", "second", "m:f"))

    ps = load_plugins(extra=[("first", First()), ("second", Second())], refresh=True)
    [failure] = ps.failures
    assert failure.plugin == "second"
    assert "command 'hi' is already registered by plugin 'first'" in failure.error


def test_a_clashing_plugin_command_does_not_break_the_cli(tmp_path):
    source = (
        "from voltx import hookimpl\nfrom voltx.plugin_specs import CommandSpec\n\n"
        "@hookimpl\ndef register_commands(register):\n"
        "    register(CommandSpec('status', 'shadows voltx status', lambda args: 3))\n"
    )
    env = install(tmp_path / "site", "voltx-shadow", "voltx_shadow", source)
    listing = cli_json("plugins", env=env)
    [failure] = listing["failures"]
    assert "'status' is a built-in voltx command" in failure["error"]
    proc = run_cli("--help", env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_builtin_command_names_match_the_parser():
    from voltx.cli.main import build_parser

    parser = build_parser(None)
    [subparsers] = [a for a in parser._actions if a.dest == "command"]
    assert set(subparsers.choices) == BUILTIN_COMMANDS


# --- a phase that is named but missing ----------------------------------------------------


def test_missing_phase_lists_installed_phases(toy_env):
    proc = run_cli("run", "nosuchphase", env=without_repo_distributions(toy_env), timeout=60)
    assert proc.returncode == EXIT_USAGE
    assert "unknown phase 'nosuchphase'" in proc.stderr
    assert "Installed: codebook, curriculum, f1, f2, f3, toy, translator." in proc.stderr
    assert "did you mean" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_phase_suggests_a_near_miss():
    proc = run_cli("run", "translater", timeout=60)
    assert proc.returncode == EXIT_USAGE
    assert "unknown phase 'translater' (did you mean 'translator'?)" in proc.stderr


def test_missing_spec_lookup_in_process():
    ps = load_plugins(refresh=True)
    with pytest.raises(UsageError, match=r"unknown sink 'cvs' \(did you mean 'csv'\?\)\. Installed: csv, mlflow, tensorboard, wandb\."):
        ps.get("sinks", "cvs")
