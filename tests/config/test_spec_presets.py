"""Presets a phase's spec ships (``PhaseSpec.presets``): what a plugin distribution's users get
without a config file of their own; a config file's preset of the same name replaces it."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from voltx import hookimpl
from voltx.config import build_config, load_config, phase_presets, resolve_for_phase
from voltx.errors import ConfigError
from voltx.plugin_specs import PhaseSpec
from voltx.plugins import load_plugins


@dataclass
class Inner:
    width: int = 8


@dataclass
class ShipConfig:
    epochs: int = 10
    lr: float = 1e-3
    inner: Inner = field(default_factory=Inner)


SPEC = PhaseSpec("ship", "a phase with presets", runner=lambda ctx: None, config_class=ShipConfig,
                 presets={"quick": {"epochs": 1, "inner": {"width": 2}}, "long": {"epochs": 100}})


@hookimpl
def register_phases(register):
    register(SPEC)


def resolved(cfg, preset):
    return resolve_for_phase(cfg, "ship", preset=preset).phases["ship"]


def test_a_spec_preset_applies_without_any_config_file():
    plugins = load_plugins(extra=[("ship", SimpleNamespace(register_phases=register_phases))], refresh=True)
    assert phase_presets(plugins)["ship"] == SPEC.presets
    cfg = build_config({}, {"ship": ShipConfig}, spec_presets=phase_presets(plugins))
    quick = resolved(cfg, "quick")
    assert (quick.epochs, quick.inner.width, quick.lr) == (1, 2, 1e-3)
    with pytest.raises(ConfigError, match="no preset 'quik' \\(did you mean 'quick'\\?\\)"):
        resolved(cfg, "quik")


def test_a_config_files_preset_of_the_same_name_replaces_the_specs(tmp_path):
    path = tmp_path / "training_config.toml"
    path.write_text("[ship]\nlr = 0.01\n\n[ship.presets.quick]\nepochs = 3\n")
    cfg = load_config(path, {"ship": ShipConfig}, {"ship": SPEC.presets})
    quick = resolved(cfg, "quick")
    assert (quick.epochs, quick.inner.width, quick.lr) == (3, 8, 0.01)  # the file's quick, whole
    assert resolved(cfg, "long").epochs == 100  # the spec's other presets stay


def test_a_spec_preset_with_a_bad_key_fails_at_registration():
    with pytest.raises(ValueError, match="phase 'ship' preset 'quick': unknown key 'ship.epoch' .*did you mean 'epochs'"):
        PhaseSpec("ship", "x", runner=lambda ctx: None, config_class=ShipConfig, presets={"quick": {"epoch": 1}})
    with pytest.raises(ValueError, match="ship.epochs expects an integer"):
        PhaseSpec("ship", "x", runner=lambda ctx: None, config_class=ShipConfig, presets={"quick": {"epochs": "many"}})
