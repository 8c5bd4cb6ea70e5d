"""What the public plugin API opened for third-party distributions: record formats a plugin
registers, presets a phase ships, and `--key value` options for a phase's own keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from voltx import hookimpl
from voltx.cli.run import phase_options
from voltx.config import build_config, phase_tables, resolve_for_phase
from voltx.data.formats import Record, RecordError, format_classes, validate_dict
from voltx.data.sources import load_records
from voltx.errors import DataError, UsageError
from voltx.plugin_specs import PhaseSpec, RecordFormatSpec
from voltx.plugins import load_plugins, reset_plugins


@dataclass(frozen=True)
class Pair(Record):
    input: str
    output: str

    FORMAT: ClassVar[str] = "pairs"
    REQUIRED: ClassVar[dict[str, str]] = {"input": "str!", "output": "str!"}


@dataclass
class ShippedConfig:
    PRESETS: ClassVar[dict[str, dict]] = {"quick": {"epochs": 1}}

    epochs: int = 5
    role: str = "a"


class Provider:
    @hookimpl
    def register_record_formats(self, register):
        register(RecordFormatSpec("pairs", "input -> output", Pair))

    @hookimpl
    def register_phases(self, register):
        register(PhaseSpec("shipped", "a phase with its own presets", "x:y", ShippedConfig))


@pytest.fixture
def plugins():
    ps = load_plugins(extra=[("provider", Provider())], refresh=True)
    assert ps.failures == []
    yield ps
    reset_plugins()


def test_a_registered_format_validates_and_reads_like_a_built_in(plugins, tmp_path):
    assert format_classes()["pairs"] is Pair
    validate_dict("pairs", {"input": "x", "output": "y"})
    with pytest.raises(RecordError, match="'output': missing"):
        validate_dict("pairs", {"input": "x"})
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"input": "x", "output": "y"}) + "\n" + json.dumps({"input": "x"}) + "\n")
    with pytest.raises(DataError, match=r"p\.jsonl:2: field output: missing .* needs pairs records \(input, output\)"):
        load_records([str(path)], "pairs", split="train", key="k", example="x")
    with pytest.raises(UsageError, match="did you mean 'pairs'"):
        validate_dict("pair", {})


def test_a_format_spec_is_refused_for_a_built_in_name_or_a_class_that_is_not_a_record():
    with pytest.raises(ValueError, match="built in"):
        RecordFormatSpec("triples", "", Pair)
    with pytest.raises(TypeError, match="subclassing voltx.data.formats.Record"):
        RecordFormatSpec("pairs", "", dict)
    with pytest.raises(ValueError, match="FORMAT = 'pairs'"):
        RecordFormatSpec("other", "", Pair)


def test_presets_shipped_on_the_config_class_apply_and_a_files_preset_replaces_them(plugins):
    classes = phase_tables(plugins)
    assert resolve_for_phase(build_config({}, classes), "shipped", preset="quick").phases["shipped"].epochs == 1
    own = build_config({"shipped": {"presets": {"quick": {"epochs": 3}}}}, classes)
    assert resolve_for_phase(own, "shipped", preset="quick").phases["shipped"].epochs == 3


def test_options_naming_keys_of_the_phase_become_overrides(plugins):
    assert phase_options("shipped", ["--role", "b", "--epochs=2", "x=1"], plugins) == ["role=b", "epochs=2", "x=1"]
    assert phase_options("shipped", ["--nope", "b"], plugins) is None
    assert phase_options("shipped", ["--role"], plugins) is None
    assert phase_options("missing", ["--role", "b"], plugins) is None
