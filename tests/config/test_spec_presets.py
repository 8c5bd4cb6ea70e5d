"""Presets a phase ships (``PRESETS`` on its config class) are checked when the phase registers:
a plugin's typo is a registration failure naming the phase's preset, never a user's run failing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from voltx.config import build_config, resolve_for_phase
from voltx.plugin_specs import PhaseSpec


@dataclass
class Inner:
    width: int = 8


def config_with(presets):
    @dataclass
    class ShipConfig:
        PRESETS: ClassVar[dict[str, dict]] = presets

        epochs: int = 10
        inner: Inner = field(default_factory=Inner)

    return ShipConfig


def test_nested_shipped_presets_register_and_apply():
    cls = config_with({"quick": {"epochs": 1, "inner": {"width": 2}}})
    PhaseSpec("ship", "x", runner=lambda ctx: None, config_class=cls)
    quick = resolve_for_phase(build_config({}, {"ship": cls}), "ship", preset="quick").phases["ship"]
    assert (quick.epochs, quick.inner.width) == (1, 2)


@pytest.mark.parametrize("presets, message", [
    ({"quick": {"epoch": 1}}, "phase 'ship' preset 'quick': unknown key 'ship.epoch' .*did you mean 'epochs'"),
    ({"quick": {"epochs": "many"}}, "ship.epochs expects an integer"),
    ({"quick": {"inner": {"widht": 2}}}, "unknown key 'ship.inner.widht'"),
    ({"quick": 3}, "preset 'quick' must be a table of overrides"),
])
def test_a_shipped_preset_with_a_bad_key_fails_at_registration(presets, message):
    with pytest.raises(ValueError, match=message):
        PhaseSpec("ship", "x", runner=lambda ctx: None, config_class=config_with(presets))
