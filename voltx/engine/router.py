"""Intent router: send a frame to the Hard Strand whose capability matches it best.

For every frame: cosine between each strand's capability vector and every active slot's
R0 vector; the single global maximum wins (registration order breaks ties, as in the
original); if it reaches that strand's threshold the strand processes the frame. A strand
that raises is caught: its changes to the frame are rolled back, the decision is marked
failed with the error, and the frame passes through — never lost, never a crash. When the
error is a VoltxError (a StrandError: the strand understood the request and refuses it,
e.g. division by zero) the decision also carries its exit code, so the caller can report
the refusal instead of answering from the untouched frame.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from voltx.engine.frame import TensorFrame
from voltx.engine.strands import HardStrand
from voltx.errors import VoltxError


@dataclass
class RouteDecision:
    strand: str | None
    slot: int | None
    similarity: float
    activated: bool
    failed: bool = False
    description: str = ""
    error: str | None = None
    details: dict = field(default_factory=dict)
    exit_code: int | None = None
    """Set when the strand refused the request with a VoltxError: the exit code the CLI uses."""

    @property
    def refused(self) -> bool:
        return self.failed and self.exit_code is not None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("details", "exit_code") or v}


class IntentRouter:
    def __init__(self, strands: list[HardStrand], unavailable: dict[str, str] | None = None):
        self.strands = list(strands)
        self.unavailable = dict(unavailable or {})
        """Strands that could not be built (name -> error): skipped, reported in traces."""
        if self.strands:
            self.capabilities = torch.stack([s.capability_vector().float() for s in self.strands])  # [S, D]
            self.thresholds = torch.tensor([float(s.threshold) for s in self.strands])
        else:
            self.capabilities = torch.zeros(0, 256)
            self.thresholds = torch.zeros(0)

    @classmethod
    def from_plugins(cls, plugins, names: list[str] | None = None, **kwargs) -> "IntentRouter":
        """Build every registered strand (or the named ones, in that order).

        A strand whose factory fails (a broken plugin) is skipped and listed in
        ``unavailable`` rather than taking the whole router down; VOLTX_STRICT_PLUGINS=1
        re-raises. Unknown names are a UsageError listing the installed strands.
        """
        import os

        from voltx.plugin_specs import resolve

        # registration order (built-ins first: math_engine, hdc_algebra, code_runner, ...) breaks ties
        chosen = names if names is not None else list(plugins.registry["strands"])
        built, unavailable = [], {}
        for name in chosen:
            spec = plugins.get("strands", name)
            try:
                built.append(resolve(spec.factory)(**kwargs.get(name, {})))
            except Exception as exc:
                if os.environ.get("VOLTX_STRICT_PLUGINS", "") not in ("", "0"):
                    raise
                unavailable[name] = f"{type(exc).__name__}: {exc}"
        return cls(built, unavailable)

    def similarities(self, frame: TensorFrame) -> torch.Tensor:
        """Cosine of every (strand, slot) pair: [B, S, 16], -inf where the slot is inactive."""
        r0 = frame.r0().float().cpu()
        active = frame.mask[..., 0].cpu()
        caps = torch.nn.functional.normalize(self.capabilities, dim=-1)
        slots = torch.nn.functional.normalize(r0, dim=-1)
        sims = torch.einsum("sd,bkd->bsk", caps, slots)
        return sims.masked_fill(~active[:, None, :], float("-inf"))

    def decide(self, frame: TensorFrame) -> list[tuple[int | None, int | None, float]]:
        if not self.strands:
            return [(None, None, float("-inf"))] * frame.batch_size
        sims = self.similarities(frame)
        b, s, k = sims.shape
        best = sims.reshape(b, s * k).max(dim=1)  # first maximum = earliest registered strand
        out = []
        for row in range(b):
            value = float(best.values[row])
            if value == float("-inf"):
                out.append((None, None, value))
            else:
                index = int(best.indices[row])
                out.append((index // k, index % k, value))
        return out

    def route(self, frame: TensorFrame) -> list[RouteDecision]:
        """Process each frame row with its best strand (in place); one decision per row."""
        decisions = []
        for row, (strand_i, slot, sim) in enumerate(self.decide(frame)):
            if strand_i is None:
                decisions.append(RouteDecision(None, None, sim, False, description=self._unroutable()))
                continue
            strand = self.strands[strand_i]
            if sim < float(self.thresholds[strand_i]):
                decisions.append(RouteDecision(strand.name, slot, sim, False,
                                               description=f"{strand.name} below threshold ({sim:.3f} < {float(self.thresholds[strand_i]):.2f})"))
                continue
            saved = _snapshot(frame, row)
            try:
                result = strand.process(frame, row)
            except Exception as exc:  # a strand's failure must not lose the frame
                _restore(frame, row, saved)
                decisions.append(RouteDecision(strand.name, slot, sim, False, failed=True,
                                               description=f"{strand.name} failed; frame passed through",
                                               error=f"{type(exc).__name__}: {exc}",
                                               details={"message": str(exc)} if isinstance(exc, VoltxError) else {},
                                               exit_code=exc.exit_code if isinstance(exc, VoltxError) else None))
                continue
            decisions.append(RouteDecision(strand.name, slot, sim, result.activated, failed=result.failed,
                                           description=f"routed to {strand.name} (sim={sim:.3f}, slot=S{slot}): {result.description}",
                                           details=result.details))
        return decisions

    def _unroutable(self) -> str:
        """Why a row went to no strand at all: no strand in use, or no active slot to compare."""
        if self.strands:
            return "the frame has no active slot: nothing to route"
        built = "; ".join(f"{name}: {error}" for name, error in self.unavailable.items())
        return "no strand is in use: nothing to route to" + (f" (could not be built: {built})" if built else "")


def _snapshot(frame: TensorFrame, row: int) -> dict:
    return {
        "data": frame.data[row].clone(), "mask": frame.mask[row].clone(), "certainty": frame.certainty[row].clone(),
        "role": frame.role[row].clone(), "source": frame.source[row].clone(), "needs_verify": frame.needs_verify[row].clone(),
        "meta": copy.deepcopy(frame.meta[row]),
    }


def _restore(frame: TensorFrame, row: int, saved: dict) -> None:
    for name in ("data", "mask", "certainty", "role", "source", "needs_verify"):
        getattr(frame, name)[row] = saved[name]
    frame.meta[row] = saved["meta"]
