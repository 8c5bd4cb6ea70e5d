"""F2's energy head in F3's RAR (issue #14, point 3; the plan's Part I.3: "RAR then performs
gradient descent on this energy landscape").

The plan trains the energy landscape in F2 (frames of correct bindings low, corrupted ones
high) and F3 lists no energy objective of its own, so F3 trains none: it takes the head F2
saved in ``relations.safetensors`` (``energy_head.*``) when it starts from F2's stack
(``f3.lang_from``), and says in the log why energy is off when it does not (a fresh stack or
F1's). The head is frozen. How RAR uses it is ``f3.energy_mode`` (:mod:`voltx.engine.rar`):
``blend`` adds ``-energy_weight * dE/ds`` to the drift, ``control`` keeps a frame's step only
when it lowers the frame's energy (halving the step otherwise, stopping after
``energy_halvings`` halvings); the test evaluation reports all three modes, off included, on
the same records (:mod:`voltx_phases.f3_eval`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from voltx import artifacts
from voltx.engine.energy import EnergyHead
from voltx.engine.rar import ENERGY_MODES
from voltx.errors import ConfigError

F2_RELATIONS = "relations.safetensors"
"""F2's artifact holding the energy head (``energy_head.*`` tensors, its size under ``energy_head`` in the metadata)."""
PREFIX = "energy_head."


@dataclass(frozen=True)
class RarEnergy:
    """An energy head and how RAR uses it (the RarConfig fields of :meth:`settings`)."""

    head: EnergyHead
    mode: str
    weight: float
    halvings: int

    def settings(self) -> dict:
        return {"energy_mode": self.mode, "energy_weight": self.weight, "energy_halvings": self.halvings}

    def with_mode(self, mode: str) -> "RarEnergy":
        return replace(self, mode=mode)


def check_settings(cfg) -> None:
    if cfg.energy_mode not in ENERGY_MODES:
        raise ConfigError(f"f3.energy_mode = {cfg.energy_mode!r}: expected one of {', '.join(ENERGY_MODES)}.")
    if cfg.energy_halvings < 0:
        raise ConfigError(f"f3.energy_halvings = {cfg.energy_halvings}: expected 0 or more.")


def load_energy(ctx, cfg, where: Path | None) -> RarEnergy | None:
    """F2's energy head beside the language stack ``where``, frozen on the run's device, or None
    (the log says why); ``cfg.energy_mode`` is how RAR uses it."""
    if where is None:
        ctx.say("Energy: off in RAR (no language stack: F3 trains no energy head, the plan trains it in F2; "
                "point f3.lang_from at a finished f2 run to use it)")
        return None
    path = where / F2_RELATIONS
    if not path.exists():
        ctx.say(f"Energy: off in RAR ({where} holds no F2 energy head ({F2_RELATIONS}): an F1 stack; "
                "point f3.lang_from at a finished f2 run to use it)")
        return None
    how = "It is written by phase f2 (`voltx run f2`); point f3.lang_from at that run."
    saved = artifacts.read(path, "relations", how)
    size = saved.meta.get("energy_head") or {}
    head = EnergyHead(dim=int(size.get("dim", 256)), hidden=int(size.get("hidden", 128)))
    weights = {k.removeprefix(PREFIX): v for k, v in saved.tensors.items() if k.startswith(PREFIX)}
    artifacts.load_into(head, replace(saved, tensors=weights), how)
    head = head.to(ctx.device).eval().requires_grad_(False)
    use = f"weight {cfg.energy_weight}" if cfg.energy_mode == "blend" else f"{cfg.energy_halvings} halvings"
    ctx.say(f"Energy: F2's energy head from {path} (hidden {head.embed.out_features}, frozen); RAR mode "
            f"{cfg.energy_mode!r}" + ("" if cfg.energy_mode == "off" else f" ({use})")
            + "; the test evaluation reports off, blend and control")
    return RarEnergy(head, cfg.energy_mode, cfg.energy_weight, cfg.energy_halvings)


def energy_summary(ev: dict[str, float]) -> list[str]:
    """``Energy (F2's head): off x% (converged y%, z it), blend ..., control ...`` when measured, else nothing."""
    shown = [f"{m} {ev[f'answer_accuracy_energy_{m}']:.1%} (converged {ev[f'rar_converged_share_energy_{m}']:.1%}, "
             f"{ev[f'rar_iterations_mean_energy_{m}']:.1f} it" + (f", E {ev[f'energy_mean_energy_{m}']:.3f}" if f"energy_mean_energy_{m}" in ev else "")
             + ")" for m in ENERGY_MODES if f"answer_accuracy_energy_{m}" in ev]
    start = f" (E of the questions {ev['energy_mean_question']:.3f})" if "energy_mean_question" in ev else ""
    return [f"Energy (F2's head) in RAR{start}: {', '.join(shown)}"] if shown else []
