"""The inference pipeline ``voltx think`` runs: encode -> safety -> route or RAR -> safety -> decode.

Follows the original server's wiring: the encoded frame goes through the safety layer and
the intent router; when no strand activates, RAR refines the R0 slots and the router gets
a second look; the result is checked again, its certainty propagated by the min rule and
decoded. Every decision lands in a trace (routing, RAR iterations and converged slots, γ,
safety verdicts) for ``--json``, with which strand answered, why, and whether exactly.

A strand that refuses its request (a StrandError: division by zero, a result too large) has
the last word: no RAR, no answer decoded from the untouched frame; the refusal is the
trace's ``error`` and the CLI exits with its code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voltx.engine.attention import SlotAttention, language_bias
from voltx.engine.calibration import min_rule
from voltx.engine.frame import ROLE_NAMES, Source, TensorFrame
from voltx.engine.rar import RarConfig, rar
from voltx.engine.router import IntentRouter
from voltx.engine.safety import SafetyLayer, SafetyVerdict
from voltx.engine.vfn import Vfn
from voltx.errors import DataError

RAR_SEED = 43  # the original server's seed for its freshly initialised attention


@dataclass
class ThinkResult:
    answer: str
    trace: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> dict | None:
        """{"strand", "message", "exit_code"} when the routed strand refused the request."""
        return self.trace.get("error")


def _verdict(v: SafetyVerdict | None) -> dict | None:
    if v is None:
        return None
    return {
        "level": v.level.value,
        "aggregate": round(v.aggregate, 4),
        "violations": [{"axiom": x.axiom, "slot": x.slot, "similarity": round(x.similarity, 4), "severity": x.severity.value} for x in v.violations],
    }


class ThinkPipeline:
    def __init__(self, translator, router: IntentRouter, safety: SafetyLayer | None = None, *,
                 vfn: torch.nn.Module | None = None, attention: SlotAttention | None = None,
                 rar_config: RarConfig = RarConfig(), vfn_source: str = "untrained", calibrator=None):
        self.translator, self.router = translator, router
        self.calibrator = calibrator
        """An IsotonicCalibrator (phase JA.3) mapping raw γ to P(correct); None = raw γ only."""
        self.safety = safety or SafetyLayer()
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(RAR_SEED)  # deterministic weights for an untrained core, without touching callers' RNG
        self.vfn = (vfn or Vfn()).eval()
        self.attention = (attention or SlotAttention()).eval()
        torch.random.set_rng_state(gen_state)
        self.rar_config, self.vfn_source = rar_config, vfn_source

    @staticmethod
    def load_vfn(path: str | Path) -> torch.nn.Module:
        """A trained small VFN (``vfn_foundation.safetensors`` from phase F3) for RAR."""
        from safetensors.torch import load_file

        vfn = Vfn()
        try:
            tensors = load_file(str(path))
            vfn.load_state_dict({k: tensors[k] for k in vfn.state_dict()})
        except Exception as exc:
            raise DataError(f"{path} is not a VFN checkpoint for the small VFN ({exc}).") from None
        return vfn

    def _core(self, frame: TensorFrame) -> tuple[TensorFrame, list[dict]]:
        """Route; if no strand activates, run RAR on R0 and route again. One proof per row."""
        proofs: list[dict] = [{"steps": []} for _ in range(frame.batch_size)]
        first = self.router.route(frame)
        for b, d in enumerate(first):
            proofs[b]["steps"].append({"stage": "route", **d.as_dict()})
        todo = [b for b, d in enumerate(first) if not d.activated and not d.refused]
        if todo:
            rows = torch.tensor(todo)
            slots = frame.r0()[rows].float()
            active = frame.mask[rows, :, 0]
            with torch.no_grad():
                out = rar(slots, active, self.vfn, self.attention, self.rar_config, bias=language_bias())
            for j, b in enumerate(todo):
                for s in torch.nonzero(active[j]).flatten().tolist():
                    frame.data[b, s, 0] = out.slots[j, s].to(frame.data.dtype)
                    frame.source[b, s] = int(Source.SOFT_CORE)
                frame.meta[b].rar_iterations += int(out.total_iterations[j])
                proofs[b]["rar"] = {
                    "vfn": self.vfn_source,
                    "iterations": int(out.total_iterations[j]),
                    "per_slot_iterations": {f"S{s}": int(out.iterations[j, s]) for s in torch.nonzero(active[j]).flatten().tolist()},
                    "converged_slots": [f"S{s}" for s in torch.nonzero(out.converged[j] & active[j]).flatten().tolist()],
                    "max_final_delta": round(float(out.final_deltas[j].max()), 6),
                }
            second = self.router.route(frame)
            for b, d in enumerate(second):
                if b in todo:
                    proofs[b]["steps"].append({"stage": "route-after-rar", **d.as_dict()})
        for b in range(frame.batch_size):
            gamma, weakest = min_rule(frame.certainty[b : b + 1], frame.mask[b : b + 1, :, 0])
            proofs[b]["steps"].append({"stage": "certainty", "description": f"min-rule propagation: global_gamma = {float(gamma[0]):.4f}"})
        return frame, proofs

    def think(self, text: str) -> ThinkResult:
        frame = self.translator.encode(text)
        result = self.safety.run(frame, self._core)
        out = result.frame
        proof = result.proofs[0] or {"steps": []}
        active = out.mask[0, :, 0]
        gamma, weakest = min_rule(out.certainty[:1], out.mask[:1, :, 0])
        answerer = _answerer(proof["steps"], result.vetoed[0], result.reasons[0])
        answer = "" if result.vetoed[0] or answerer["error"] else self.translator.decode(out, 0)
        trace = {
            "input": text,
            "translator": getattr(self.translator, "name", type(self.translator).__name__),
            "safety_before": _verdict(result.before[0]),
            "safety_after": _verdict(result.after[0]),
            "vetoed": result.vetoed[0],
            "veto_reason": result.reasons[0],
            "routing": proof["steps"],
            "strands_unavailable": self.router.unavailable,
            "rar": proof.get("rar"),
            "slots": [
                {"slot": f"S{s}", "role": ROLE_NAMES[s], "gamma": round(float(out.certainty[0, s]), 4), "source": Source(int(out.source[0, s])).name.lower()}
                for s in torch.nonzero(active).flatten().tolist()
            ],
            "global_gamma": round(float(gamma[0]), 4),
            "calibrated_gamma": round(float(self.calibrator.transform([float(gamma[0])])[0]), 4) if self.calibrator is not None else None,
            "verified": bool(out.meta[0].verified),
            "proof_length": int(out.meta[0].proof_length),
            "answer": answer,
            **answerer,
        }
        return ThinkResult(answer, trace)


def _answerer(steps: list[dict], vetoed: bool, veto_reason: str | None) -> dict:
    """Which strand answered, why, whether exactly, and the refusal if it refused (trace fields)."""
    routes = [s for s in steps if s.get("stage") in ("route", "route-after-rar")]
    answered = next((s for s in reversed(routes) if s.get("activated")), None)
    refused = next((s for s in reversed(routes) if s.get("exit_code")), None)
    if vetoed:
        return {"strand": None, "reason": f"vetoed by the safety layer: {veto_reason}", "exact": False, "error": None}
    if answered is not None:
        return {"strand": answered["strand"], "reason": answered["description"],
                "exact": bool(answered.get("details", {}).get("exact", False)), "error": None}
    if refused is not None:
        message = refused.get("details", {}).get("message") or refused.get("error")
        return {"strand": refused["strand"], "reason": f"{refused['strand']} refused the request: {message}", "exact": False,
                "error": {"strand": refused["strand"], "message": message, "exit_code": refused["exit_code"]}}
    why = "; ".join(s["description"] for s in routes if s.get("description"))
    return {"strand": None, "reason": f"no strand answered ({why}); the translator decoded the slots RAR refined",
            "exact": False, "error": None}
