"""The trio's data: the instruction format through voltx's open record formats, the puzzles, the mix ratio."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from voltx.config import build_config, phase_tables, resolve_for_phase
from voltx.data.formats import RecordError, from_dict, validate_dict
from voltx.data.sources import load_records
from voltx.errors import EXIT_CONFIG, EXIT_DATA, ConfigError, DataError
from voltx.plugins import load_plugins

from voltx_trio import puzzles
from voltx_trio.records import Instruction
from voltx_trio.roles import ROLES


def test_the_plugin_registers_its_phase_format_and_command_without_importing_torch():
    ps = load_plugins(refresh=True)
    assert [f for f in ps.failures if f.plugin == "trio"] == []
    assert {"phases": ["trio"], "record_formats": ["instruction"], "commands": ["trio"]}.items() <= ps.plugins["trio"].provides.items()
    code = "import sys, voltx_trio, voltx_trio.phase, voltx_trio.records; print('torch' in sys.modules, 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["False", "False"]


def test_instruction_records_validate_like_a_built_in_format(tmp_path):
    load_plugins(refresh=True)
    assert isinstance(from_dict("instruction", {"input": "P∧Q?P", "output": "●"}), Instruction)
    with pytest.raises(RecordError, match="'output': missing"):
        validate_dict("instruction", {"input": "P∧Q?P"})
    with pytest.raises(RecordError, match="unknown field"):
        validate_dict("instruction", {"input": "x", "output": "y", "answer": "z"})
    bad = tmp_path / "pairs.jsonl"
    bad.write_text(json.dumps({"input": "a", "output": "b"}) + "\n" + json.dumps({"input": "P→Q,P?Q"}) + "\n")
    with pytest.raises(DataError, match=r"pairs\.jsonl:2: field output: missing .*instruction records \(input, output, source, meta\)"):
        load_records([str(bad)], "instruction", split="train", key="trio.data", example="hybrid")


def test_puzzle_splits_are_disjoint_and_no_constant_verdict_wins():
    inputs = {s: {p["input"] for p in puzzles.puzzles(s)} for s in puzzles.SPLITS}
    assert not inputs["train"] & inputs["dev"] and not inputs["train"] & inputs["test"] and not inputs["dev"] & inputs["test"]
    dev = puzzles.sample("dev", 90, seed=1)
    assert {v: sum(p["output"] == v for p in dev) for v in puzzles.VERDICTS} == {v: 30 for v in puzzles.VERDICTS}
    assert {"input": "P→Q,P?Q", "output": "●"}.items() <= next(p for p in puzzles.enumerate_puzzles() if p["input"] == "P→Q,P?Q").items()


def test_each_role_answers_hybrid_records_in_its_own_format():
    p = next(puzzles.enumerate_puzzles())
    for name, role in ROLES.items():
        out = puzzles.hybrid_record(p, name)["output"]
        assert role.follows_format(out, pure=False)
        assert not any(other.follows_format(out, pure=False) for n, other in ROLES.items() if n != name)
        assert role.follows_format("◐", pure=True) and not role.follows_format("◐ maybe", pure=True)


def test_mix_weights_that_do_not_sum_to_one_are_a_config_error_naming_the_key():
    ps = load_plugins(refresh=True)
    base = build_config({}, phase_tables(ps))
    with pytest.raises(ConfigError, match=r"trio\.data: the mix weights must sum to 1, got 0\.6 \+ 0\.6 = 1\.2") as err:
        resolve_for_phase(base, "trio", overrides=['data=["gen:hybrid:0.6", "gen:pure:0.6"]'])
    assert err.value.exit_code == EXIT_CONFIG
    assert resolve_for_phase(base, "trio", preset="quick").phases["trio"].base_model == "tiny"  # the phase ships its presets
    assert EXIT_DATA == DataError("x").exit_code


def test_a_jsonl_source_is_held_out_and_mixed_by_weight_with_a_generator(tmp_path):
    from voltx_trio.data import build
    from voltx_trio.phase import TrioConfig

    load_plugins(refresh=True)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"input": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(10)))
    cfg = TrioConfig(data=["gen:pure:0.5", f"{pairs}:0.5"], examples=20, eval_examples=6)
    sets = build(cfg, tmp_path / "work", seed=0)
    from_file = [r for r in sets.train if r["input"].startswith("q")]
    assert len(from_file) == 9 and len(sets.train) == 18  # the largest mix that keeps 50/50 without resampling
    assert len(sets.file_eval) == 1 and sets.file_eval[0] not in from_file
    assert len(sets.pure_eval) == len(sets.hybrid_eval) == 3
    assert (tmp_path / "work" / "train-mix.jsonl").read_text().count("\n") == 18
