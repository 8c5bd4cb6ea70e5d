"""F3 with F2's energy head: loading it (or saying why not), the settings, the evaluation's rows."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from voltx import artifacts
from voltx.engine.energy import EnergyHead
from voltx.errors import ConfigError
from voltx_phases.f3 import F3Config
from voltx_phases.f3_energy import F2_RELATIONS, check_settings, energy_summary, load_energy
from voltx_phases.f3_eval import Evaluator


def fake_ctx():
    said: list[str] = []
    return SimpleNamespace(say=said.append, device=torch.device("cpu"), said=said)


def test_no_stack_or_an_f1_stack_means_energy_off_and_the_log_says_why(tmp_path):
    cfg = F3Config(energy_mode="blend")
    ctx = fake_ctx()
    assert load_energy(ctx, cfg, None) is None
    assert load_energy(ctx, cfg, tmp_path) is None
    assert "off in RAR (no language stack" in ctx.said[0] and "f2 run" in ctx.said[0]
    assert f"holds no F2 energy head ({F2_RELATIONS})" in ctx.said[1]


def test_f2s_energy_head_is_loaded_frozen_with_the_configured_mode(tmp_path):
    torch.manual_seed(0)
    saved = EnergyHead(hidden=16)
    tensors = {"relations": torch.randn(3, 256), **{f"energy_head.{k}": v for k, v in saved.state_dict().items()}}
    artifacts.save(tmp_path / F2_RELATIONS, tensors, "relations", names=["a", "b", "c"], energy_head={"dim": 256, "hidden": 16})
    ctx = fake_ctx()
    energy = load_energy(ctx, F3Config(energy_mode="control", energy_halvings=2), tmp_path)
    slots, active = torch.nn.functional.normalize(torch.randn(2, 16, 256), dim=-1), torch.ones(2, 16, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(energy.head(slots, active), saved.eval()(slots, active))
    assert not any(p.requires_grad for p in energy.head.parameters()) and not energy.head.training
    assert energy.settings() == {"energy_mode": "control", "energy_weight": 0.1, "energy_halvings": 2}
    assert energy.with_mode("blend").settings()["energy_mode"] == "blend"
    assert "F2's energy head" in ctx.said[0] and "'control'" in ctx.said[0]


@pytest.mark.parametrize(("field", "value", "needle"), [("energy_mode", "descend", "off, blend, control"),
                                                        ("energy_halvings", -1, "0 or more")])
def test_bad_energy_settings_are_refused(field, value, needle):
    with pytest.raises(ConfigError, match=needle):
        check_settings(F3Config(**{field: value}))


def test_every_energy_mode_gets_its_own_accuracy_row_and_summary():
    ev = Evaluator.__new__(Evaluator)  # only the bookkeeping: no model
    ev.records = [{"task": "qa1", "output": "garden"}, {"task": "qa1", "output": "kitchen"}]
    ev.majority = {"qa1": "garden"}
    exact = {"": [True, False], "_rar_off": [False, False], "_energy_off": [True, False], "_energy_blend": [True, True],
             "_energy_control": [False, False]}
    out = ev._accuracies(exact, {}, [(1, 1)] * 2, ["garden", "hall"])
    assert (out["babi_qa1_accuracy_energy_off"], out["babi_qa1_accuracy_energy_blend"], out["babi_qa1_accuracy_energy_control"]) == (0.5, 1.0, 0.0)
    measured = {f"{k}_energy_{m}": v for m, v in (("off", 0.5), ("blend", 1.0), ("control", 0.0))
                for k in ("answer_accuracy", "rar_converged_share", "rar_iterations_mean")}
    (line,) = energy_summary(measured)
    assert line.startswith("Energy (F2's head) in RAR: off 50.0%") and "blend 100.0% (converged 100.0%, 1.0 it)" in line
    assert energy_summary({"answer_accuracy": 0.5}) == []
