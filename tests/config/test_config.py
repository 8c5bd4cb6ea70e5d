"""training_config.toml -> dataclasses: strict parsing, messages, overrides, precedence, round trip."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from voltx.config import GLOBAL_TABLES, HardwareConfig, build_config, load_config, parse_override, phase_tables, resolve_for_phase, to_toml
from voltx.errors import EXIT_CONFIG, EXIT_NO_INPUT, ConfigError, MissingInputError
from voltx.plugins import load_plugins, reset_plugins
from voltx_phases.codebook import CodebookConfig
from voltx_phases.curriculum import CurriculumConfig
from voltx_phases.f1 import F1Config
from voltx_phases.f2 import F2Config
from voltx_phases.f3 import F3Config
from voltx_phases.translator import EncoderStageConfig, TranslatorConfig

REPO = Path(__file__).resolve().parents[2]
REPO_CONFIG = REPO / "training_config.toml"
ALL_TABLES = ["paths", "hardware", "run", "translator", "codebook", "f1", "f2", "f3", "curriculum"]
BUILTIN_PHASES = {
    "translator": TranslatorConfig, "codebook": CodebookConfig, "f1": F1Config, "f2": F2Config, "f3": F3Config,
    "curriculum": CurriculumConfig,
}


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the repo's own config ------------------------------------------------------------------


def test_repo_config_parses_strictly_with_every_table():
    raw = tomllib.loads(REPO_CONFIG.read_text(encoding="utf-8"))
    assert list(raw) == ALL_TABLES
    cfg = load_config(REPO_CONFIG)
    plugins = load_plugins()  # with the repository's plugin distributions (plugins/voltx-*) installed too
    builtin = {n: c for n, c in phase_tables(plugins).items() if plugins.plugins[plugins.provider("phases", n)].builtin}
    assert builtin == BUILTIN_PHASES  # each phase's table comes from its spec in the plugin registry
    assert set(cfg.phases) == set(phase_tables(plugins))
    for name, cls in BUILTIN_PHASES.items():
        assert type(cfg.phases[name]) is cls
    # The values really come from the file, not just the defaults.
    assert cfg.hardware.device == "auto"
    assert cfg.run.alert_rules == ["loss-spike", "throughput-drop", "low-disk"]
    assert cfg.phases["f3"].rar_max_iterations == 30
    assert cfg.phases["curriculum"].phases == ["f1", "f2", "f3"]
    assert "quick" in cfg.presets["translator"]


def test_repo_config_header_names_the_command_that_runs_it():
    header = []
    for line in REPO_CONFIG.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    text = "\n".join(header)
    assert "voltx run translator" in text
    assert "voltx config validate training_config.toml" in text


def test_cli_validates_the_repo_config(cli_in_process):
    proc = cli_in_process("config", "validate", "training_config.toml", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
    assert "Traceback" not in proc.stderr


# --- strict parsing: errors name the file, line, key and what was expected -------------------


def test_unknown_key_names_file_line_key_and_closest(tmp_path):
    path = write(tmp_path, "[run]\nseed = 1\nlog_evry = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:3" in msg
    assert "log_evry" in msg
    assert "did you mean 'log_every'" in msg


def test_keys_an_older_config_has_say_they_are_no_longer_read(tmp_path):
    # a training_config.toml copied before these keys were retired: every one named, with its line and what to do
    path = write(tmp_path, "[hardware]\nnum_gpus = 1\n\n[paths]\ndata_dir = \"data\"\n\n[d1]\nepochs = 10\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:2: 'hardware.num_gpus' is no longer read" in msg
    assert f"{path}:5: 'paths.data_dir' is no longer read" in msg
    assert f"{path}:7: [d1] is no longer read (no D1 phase exists yet" in msg
    assert msg.count(f"delete it from {path}") == 3 and "did you mean" not in msg


def test_unknown_key_in_nested_table(tmp_path):
    path = write(tmp_path, "[translator]\nmax_examples = 3\n\n[translator.encoder]\nepochs = 1\nbatchsize = 8\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:6" in msg
    assert "translator.encoder.batchsize" in msg
    assert "batch_size" in msg


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[translator.encoder]\nlr = \"3e-4\"\n", "translator.encoder.lr", "a number"),  # string for a float
        ("[translator.encoder]\nepochs = 2.5\n", "translator.encoder.epochs", "an integer"),  # float for an int
        ("[run]\nseed = true\n", "run.seed", "an integer"),  # bool for an int
        ("[hardware]\ndeterministic = 1\n", "hardware.deterministic", "true or false"),
        ("[run]\nsinks = 3\n", "run.sinks", "a list of a string"),
        ("[hardware]\nprecision = \"fp8\"\n", "hardware.precision", "one of 'fp32', 'bf16', 'fp16'"),
    ],
)
def test_wrong_type_names_key_and_expected_type(tmp_path, text, key, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:2" in msg
    assert key in msg
    assert expected in msg


def test_whole_float_is_accepted_for_an_int(tmp_path):
    cfg = load_config(write(tmp_path, "[translator.encoder]\nepochs = 3.0\n"))
    assert cfg.phases["translator"].encoder.epochs == 3
    assert isinstance(cfg.phases["translator"].encoder.epochs, int)


def test_unknown_top_level_table(tmp_path):
    path = write(tmp_path, "[run]\nseed = 1\n\n[hardwre]\ndevice = \"cpu\"\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:4" in msg
    assert "'hardwre'" in msg
    assert "did you mean 'hardware'" in msg


def test_invalid_toml_names_the_line(tmp_path):
    path = write(tmp_path, "[run]\nseed = 1\nlog_every = = 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "line 3" in msg


def test_table_given_a_scalar(tmp_path):
    path = write(tmp_path, "run = 3\n")
    with pytest.raises(ConfigError, match=r"\[run\] must be a table"):
        load_config(path)


def test_missing_file_is_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_preset_with_a_typo_fails_at_load(tmp_path):
    text = "[translator]\nmax_examples = 10\n\n[translator.presets.quick]\nmax_examples = 5\nencoder.lrr = 1e-3\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:6" in msg  # the preset's line, not the table's
    assert "encoder.lrr" in msg
    assert "did you mean 'lr'" in msg
    assert "quick" in msg


def test_preset_with_a_wrong_type_fails_at_load(tmp_path):
    text = "[translator.encoder]\nlr = 1e-3\n\n[translator.presets.quick]\nencoder.lr = \"fast\"\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"{path}:5" in msg
    assert "translator.encoder.lr" in msg and "a number" in msg and "quick" in msg


def test_presets_must_be_tables(tmp_path):
    path = write(tmp_path, "[translator]\npresets = 3\n")
    with pytest.raises(ConfigError, match="presets"):
        load_config(path)


# --- overrides --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("encoder.lr=3e-4", "encoder.lr", 3e-4),
        ("hardware.device=cpu", "hardware.device", "cpu"),  # bare word: a string
        ("hardware.device=\"cuda:1\"", "hardware.device", "cuda:1"),
        ("run.sinks=[\"csv\"]", "run.sinks", ["csv"]),
        ("encoder.epochs=3", "encoder.epochs", 3),
        ("hardware.deterministic=false", "hardware.deterministic", False),
        (" run.seed = 7 ", "run.seed", 7),
    ],
)
def test_parse_override(item, key, value):
    assert parse_override(item) == (key, value)


@pytest.mark.parametrize("item", ["encoder.lr", "=3", "encoder lr=3", "encoder..lr=3", ""])
def test_override_that_is_not_key_value(item):
    with pytest.raises(ConfigError, match="is not key=value"):
        parse_override(item)


def test_relative_and_absolute_overrides():
    base = load_config(None)
    cfg = resolve_for_phase(
        base,
        "translator",
        overrides=["encoder.lr=3e-4", "hardware.device=cpu", "run.sinks=[\"csv\"]", "translator.decoder.epochs=1", "max_examples=9"],
    )
    t = cfg.phases["translator"]
    assert t.encoder.lr == 3e-4
    assert t.decoder.epochs == 1
    assert t.max_examples == 9
    assert cfg.hardware.device == "cpu"
    assert cfg.run.sinks == ["csv"]
    # the original config is not modified
    assert base.hardware.device == "auto" and base.phases["translator"].encoder.lr == EncoderStageConfig().lr


def test_override_of_another_phase_table():
    cfg = resolve_for_phase(load_config(None), "translator", overrides=["f3.vfn_blocks=2"])
    assert cfg.phases["f3"].vfn_blocks == 2


def test_unknown_override_key_suggests_the_closest():
    with pytest.raises(ConfigError) as err:
        resolve_for_phase(load_config(None), "translator", overrides=["encoder.lrr=1e-3"])
    msg = str(err.value)
    assert "encoder.lrr=1e-3" in msg
    assert "did you mean 'translator.encoder.lr'" in msg


def test_unknown_absolute_override_key():
    with pytest.raises(ConfigError, match=r"did you mean 'hardware.device'"):
        resolve_for_phase(load_config(None), "translator", overrides=["hardware.devise=cpu"])


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("encoder.lr=fast", "a number"),
        ("encoder.epochs=2.5", "an integer"),
        ("encoder.epochs=true", "an integer"),
        ("hardware.precision=fp8", "one of"),
        ("encoder.lr.x=1", "not a table"),
        ("translator.encoder=1", "must be a table"),
    ],
)
def test_override_with_wrong_type(item, expected):
    with pytest.raises(ConfigError) as err:
        resolve_for_phase(load_config(None), "translator", overrides=[item])
    msg = str(err.value)
    assert item in msg
    assert expected in msg


def test_unknown_preset_suggests_the_closest(tmp_path):
    base = load_config(write(tmp_path, "[translator.presets.quick]\nmax_examples = 5\n"))
    with pytest.raises(ConfigError, match=r"did you mean 'quick'"):
        resolve_for_phase(base, "translator", preset="quik")


def test_precedence_cli_over_preset_over_file_over_default(tmp_path):
    text = """
[translator]
max_examples = 100
valid_fraction = 0.2

[translator.encoder]
epochs = 7
lr = 1e-3
batch_size = 32

[translator.presets.quick]
max_examples = 50
encoder.epochs = 3
encoder.lr = 2e-3
"""
    base = load_config(write(tmp_path, text))
    t = base.phases["translator"]
    assert (t.max_examples, t.encoder.epochs, t.encoder.lr) == (100, 7, 1e-3)  # file over default
    cfg = resolve_for_phase(base, "translator", preset="quick", overrides=["encoder.lr=5e-3"])
    t = cfg.phases["translator"]
    assert t.encoder.lr == 5e-3  # CLI over preset
    assert t.encoder.epochs == 3  # preset over file
    assert t.max_examples == 50
    assert t.encoder.batch_size == 32  # file, untouched by the preset
    assert t.valid_fraction == 0.2
    assert t.encoder.warmup == EncoderStageConfig().warmup  # default
    assert t.decoder == TranslatorConfig().decoder


def test_to_toml_round_trips_a_resolved_config(tmp_path):
    base = load_config(REPO_CONFIG)
    cfg = resolve_for_phase(
        base, "translator", preset="quick", overrides=["data=C:\\corpus \"x\"\\a.jsonl", "hardware.device=cpu", "run.sinks=[\"csv\"]"]
    )
    tables = {"paths": cfg.paths, "hardware": cfg.hardware, "run": cfg.run, **cfg.phases}
    text = to_toml(tables, header="# resolved\n")
    assert text.startswith("# resolved")
    back = build_config(tomllib.loads(text))
    assert back.paths == cfg.paths
    assert back.hardware == cfg.hardware
    assert back.run == cfg.run
    for name in BUILTIN_PHASES:
        assert back.phases[name] == cfg.phases[name], name
    assert back.phases["translator"].data == 'C:\\corpus "x"\\a.jsonl'
    assert back.phases["translator"].encoder.lr == 2e-3  # preset applied before writing
    assert dataclasses.asdict(back.phases["f3"])["min_lr"] == 1e-6


def test_defaults_build_every_table():
    cfg = build_config({})
    for name, cls in GLOBAL_TABLES.items():
        assert getattr(cfg, name) == cls()
    for name, cls in BUILTIN_PHASES.items():
        assert cfg.phases[name] == cls()
    assert cfg.hardware == HardwareConfig()


def _top_level_problem(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    [problem] = err.value.problems
    return problem


def test_a_disabled_builtin_phase_validates_like_a_third_party_phase_not_installed(tmp_path, monkeypatch):
    """Built-in and third-party phases register their table the same way: without the
    plugin, its table is an unknown top-level key, named with the keys that are valid."""
    monkeypatch.setenv("VOLTX_DISABLE_PLUGINS", "f1")
    reset_plugins()
    assert "f1" not in phase_tables()
    missing = _top_level_problem(write(tmp_path, "[toy]\nepochs = 1\n", "toy.toml"))
    disabled = _top_level_problem(write(tmp_path, "[f1]\nepochs = 1\n", "f1.toml"))
    for problem, name in ((missing, "toy"), (disabled, "f1")):
        assert f".toml:1: unknown key '{name}' in the top level" in problem, problem
        valid = problem.split("Valid keys: ")[1].rstrip(".").split(", ")
        builtin = [v for v in valid if v in (*GLOBAL_TABLES, *BUILTIN_PHASES)]  # not the installed plugins/voltx-* ones
        assert builtin == ["paths", "hardware", "run", "codebook", "curriculum", "f2", "f3", "translator"]
    assert build_config({"f2": {"epochs": 1}}).phases["f2"].epochs == 1  # the other phases are untouched


# --- the CLI: show, exit codes, no tracebacks ----------------------------------------------------


def test_cli_config_show_prints_merged_values(cli_in_process):
    proc = cli_in_process("config", "show", "translator", "--preset", "quick", "encoder.lr=1e-3", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    shown = tomllib.loads(proc.stdout)
    assert set(shown) == {"paths", "hardware", "run", "translator"}
    t = shown["translator"]
    assert t["encoder"]["lr"] == 1e-3  # override
    assert t["encoder"]["epochs"] == 4  # preset
    assert t["max_examples"] == 4000  # preset
    assert t["tokenizer"]["vocab_size"] == 4096  # preset
    assert t["encoder"]["temperature"] == 0.07  # file
    assert t["encoder"]["grad_clip"] == 1.0  # default
    assert shown["run"]["seed"] == 42


def test_cli_config_show_unknown_phase_is_usage_error(cli_in_process):
    proc = cli_in_process("config", "show", "translatr", "encoder.lr=1e-3")
    assert proc.returncode == 64
    assert "did you mean 'translator'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_config_show_bad_override_exits_78(cli_in_process):
    proc = cli_in_process("config", "show", "translator", "encoder.lrr=1e-3")
    assert proc.returncode == EXIT_CONFIG
    assert "encoder.lr" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[run]\nseed = 1\nlog_evry = 3\n", "bad.toml:3"),
        ("[run]\nseed = \"one\"\n", "bad.toml:2"),
        ("[run\nseed = 1\n", "line 1"),
    ],
)
def test_cli_config_error_exits_78_without_traceback(cli_in_process, tmp_path, text, needle):
    bad = write(tmp_path, text, "bad.toml")
    proc = cli_in_process("config", "validate", str(bad))
    assert proc.returncode == EXIT_CONFIG
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_missing_config_exits_66(cli_in_process, tmp_path):
    proc = cli_in_process("config", "validate", str(tmp_path / "missing.toml"))
    assert proc.returncode == EXIT_NO_INPUT
    assert "missing.toml" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- every problem of a file at once ----------------------------------------------------------

MANY_PROBLEMS = (
    '[run]\nseed = "one"\nlog_evry = 3\n\n[hardwre]\ndevice = "cpu"\n\n'
    "[translator.encoder]\nepochs = 2.5\nbatchsize = 8\n\n"
    '[translator.presets.quick]\nencoder.lrr = 1e-3\nmax_examples = "many"\n'
)


def test_every_problem_of_a_file_is_reported_in_file_order(tmp_path):
    path = write(tmp_path, MANY_PROBLEMS)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = err.value.problems
    assert [p.split(":")[1] for p in problems] == ["2", "3", "5", "9", "10", "13", "14"]
    assert "run.seed expects an integer" in problems[0] and "the default is seed = 42" in problems[0]
    assert "did you mean 'log_every'" in problems[1]
    assert "did you mean 'hardware'" in problems[2]
    assert "translator.encoder.epochs expects an integer" in problems[3]
    assert "did you mean 'batch_size'" in problems[4]
    assert "did you mean 'lr'" in problems[5] and "in preset 'quick'" in problems[5]
    assert "translator.max_examples" in problems[6] and "in preset 'quick'" in problems[6]
    assert str(err.value).startswith(f"{path}: 7 problems:")


def test_a_base_table_problem_is_not_repeated_for_each_preset(tmp_path):
    path = write(tmp_path, "[translator]\nmax_examples = \"x\"\n\n[translator.presets.quick]\nencoder.epochs = 1\n"
                           "\n[translator.presets.full]\nencoder.epochs = 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len(err.value.problems) == 1 and str(err.value).startswith(f"{path}:2:")


def test_cli_validate_lists_every_problem(cli_in_process, tmp_path):
    bad = write(tmp_path, MANY_PROBLEMS, "bad.toml")
    proc = cli_in_process("config", "validate", str(bad))
    assert proc.returncode == EXIT_CONFIG
    assert "7 problems" in proc.stderr
    for line in (2, 3, 5, 9, 10, 13, 14):
        assert f"bad.toml:{line}:" in proc.stderr
    assert "Traceback" not in proc.stderr
