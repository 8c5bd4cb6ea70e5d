"""The plan's optimiser option: Muon x Grokfast, with AdamW as the control.

:class:`MuonGrokfast` is one optimizer to voltx's loop (``param_groups``, ``zero_grad``,
``step``, ``state_dict``/``load_state_dict``) made of two of torch's own: ``torch.optim.Muon``
(orthogonalised momentum updates, Newton-Schulz) for the 2-D weight matrices of the hidden
layers, ``torch.optim.AdamW`` for everything else (embeddings, the output head, norms,
biases, memory slots), as Muon's authors prescribe. ``adjust_lr_fn="match_rms_adamw"`` scales
Muon's update to AdamW's RMS, so one learning rate and schedule serve both groups (the loop
sets one lr on every group).

Before either steps, every gradient goes through the Grokfast-EMA filter (Lee et al. 2024,
"Grokfast: Accelerated Grokking by Amplifying Slow Gradients"): ``ema = alpha * ema + (1 -
alpha) * g``; ``g = g + lamb * ema``: the slow component of the gradient is amplified. The
filter is those two lines, so it is written here instead of pulling a package for them; its
state is a tensor per parameter saved with the optimizer's (exact resume).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

GROK_KEY = "grokfast_ema"
LR_SCALE = "lr_scale"
"""A parameter group's multiple of the loop's learning rate (voltx's loop sets one lr on every group)."""


class GroupScaledAdamW(torch.optim.AdamW):
    """AdamW whose groups may each carry an ``lr_scale``: the loop sets one scheduled lr on every
    group before each step, and the step applies each group's multiple of it (then puts the lr
    back, so the schedule's value is what the loop reads and logs)."""

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        scheduled = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = g["lr"] * g.get(LR_SCALE, 1.0)
        try:
            return super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, scheduled):
                g["lr"] = lr


def scaled_groups(params: list[nn.Parameter], memory: list[nn.Parameter], mult: float) -> list[dict]:
    """``params`` as AdamW groups: the memory's (``mult`` times the lr) apart from the rest."""
    ids = {id(p) for p in memory}
    rest, mem = [p for p in params if id(p) not in ids], [p for p in params if id(p) in ids]
    return [g for g in ({"params": rest, LR_SCALE: 1.0}, {"params": mem, LR_SCALE: mult}) if g["params"]]


def memory_parameters(model: nn.Module) -> list[nn.Parameter]:
    memory = getattr(model, "memory", None)
    return list(memory.parameters()) if isinstance(memory, nn.Module) else []


def muon_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(2-D hidden weight matrices for Muon, the rest for AdamW). Embeddings, the output head,
    the memory slots and one-row heads (halting, memory gate: vectors stored as matrices) are
    2-D too, but not hidden-layer weights: AdamW takes them."""
    skip = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        skip.add(id(head.weight))
    hidden, rest = [], []
    for name, p in model.named_parameters():
        hidden_matrix = p.ndim == 2 and min(p.shape) > 1 and id(p) not in skip and not name.endswith("slots")
        (hidden if hidden_matrix else rest).append(p)
    return hidden, rest


class MuonGrokfast:
    """Muon on hidden matrices + AdamW on the rest, each gradient Grokfast-filtered first."""

    def __init__(self, model: nn.Module, lr: float, weight_decay: float, momentum: float = 0.95,
                 grok_alpha: float = 0.98, grok_lambda: float = 2.0, memory_lr_mult: float = 1.0) -> None:
        hidden, rest = muon_parameters(model)
        self.muon = torch.optim.Muon(hidden, lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=True,
                                     adjust_lr_fn="match_rms_adamw")
        groups = scaled_groups(rest, memory_parameters(model), memory_lr_mult) if memory_lr_mult != 1 else rest
        self.adamw = GroupScaledAdamW(groups, lr=lr, weight_decay=weight_decay)
        self.parts = (self.muon, self.adamw)
        self.param_groups = self.muon.param_groups + self.adamw.param_groups
        self.grok_alpha, self.grok_lambda = grok_alpha, grok_lambda
        self.ema: dict[int, torch.Tensor] = {}
        """Grokfast's slow gradient, by parameter index (Muon's parameters first, then AdamW's)."""

    def _params(self) -> list[nn.Parameter]:
        return [p for opt in self.parts for g in opt.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for i, p in enumerate(self._params()):
            if p.grad is None:
                continue
            ema = self.ema.get(i)
            if ema is None:
                self.ema[i] = ema = p.grad.detach().clone()
            else:
                ema.mul_(self.grok_alpha).add_(p.grad, alpha=1.0 - self.grok_alpha)
            p.grad.add_(ema, alpha=self.grok_lambda)
        for opt in self.parts:
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        """One ``torch.optim`` state dict: Muon's indices first, AdamW's after them; the filter's
        slow gradient is each parameter's ``grokfast_ema`` entry."""
        m, a = self.muon.state_dict(), self.adamw.state_dict()
        shift = sum(len(g["params"]) for g in m["param_groups"])
        state = {**{i: dict(s) for i, s in m["state"].items()}, **{i + shift: dict(s) for i, s in a["state"].items()}}
        for i, ema in self.ema.items():
            state.setdefault(i, {})[GROK_KEY] = ema
        groups = m["param_groups"] + [{**g, "params": [i + shift for i in g["params"]]} for g in a["param_groups"]]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        n_muon = len(self.muon.param_groups)
        shift = sum(len(g["params"]) for g in self.muon.param_groups)
        state = {int(i): dict(s) for i, s in sd["state"].items()}
        self.ema = {i: s.pop(GROK_KEY) for i, s in state.items() if GROK_KEY in s}
        m_groups, a_groups = sd["param_groups"][:n_muon], sd["param_groups"][n_muon:]
        for g in m_groups:
            if isinstance(g.get("ns_coefficients"), list):
                g["ns_coefficients"] = tuple(g["ns_coefficients"])
        self.muon.load_state_dict({"state": {i: s for i, s in state.items() if i < shift and s}, "param_groups": m_groups})
        self.adamw.load_state_dict({"state": {i - shift: s for i, s in state.items() if i >= shift and s},
                                    "param_groups": [{**g, "params": [i - shift for i in g["params"]]} for g in a_groups]})
        self.param_groups = self.muon.param_groups + self.adamw.param_groups


def build_optimizer(kind: str, model: nn.Module, lr: float, weight_decay: float, momentum: float,
                    grok_alpha: float, grok_lambda: float, memory_lr_mult: float = 1.0):
    """``muon_grokfast`` (the plan's) or ``adamw`` (the control: None, the kit's own AdamW);
    ``memory_lr_mult`` != 1 trains the model's memory at that multiple of the learning rate
    (AdamW: then this module's, with the memory in a group of its own)."""
    if kind == "adamw":
        if memory_lr_mult == 1:
            return None
        return GroupScaledAdamW(scaled_groups(list(model.parameters()), memory_parameters(model), memory_lr_mult),
                                lr=lr, weight_decay=weight_decay)
    return MuonGrokfast(model, lr, weight_decay, momentum, grok_alpha, grok_lambda, memory_lr_mult)
