"""The inference pipeline ``voltx think`` runs: encode -> safety -> route or RAR -> safety -> decode.

Follows the original server's wiring: the encoded frame goes through the safety layer and
the intent router; when no strand activates, RAR refines the R0 slots and the router gets
a second look; the result is checked again, its certainty propagated by the min rule and
decoded. Every decision lands in a trace (routing, RAR iterations and converged slots, γ,
safety verdicts) for ``--json``, with which strand answered, why, and whether exactly.

A strand that refuses its request (a StrandError: division by zero, a result too large) has
the last word: no RAR, no answer decoded from the untouched frame; the refusal is the
trace's ``error`` and the CLI exits with its code.

A strand request (voltx.engine.strand_requests: arithmetic, ``run:``/``debug:`` code) is the
strand's to answer: RAR cannot compute, so when the strand it asks for is not in use, could
not be built or failed, the trace's ``error`` says so and how to enable it (exit 69) instead
of decoding the request's own slots. Likewise a frame the translator cannot render (the stub
knows only its own words) is no answer, exit 69, never placeholders such as ``[slot1]``.
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
from voltx.engine.strand_requests import RequestKind, asked_of
from voltx.engine.vfn import Vfn
from voltx.errors import EXIT_UNAVAILABLE, NoAnswerError, UsageError

RAR_SEED = 43  # the original server's seed for its freshly initialised attention


@dataclass
class ThinkResult:
    answer: str
    trace: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> dict | None:
        """{"kind", "strand", "message", "exit_code"} when there is no answer: kind "refused" (the
        strand refused the request: exit 65) or "no_answer" (nothing in use could answer: exit 69)."""
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
        """A trained small VFN (the weights of :class:`voltx.engine.vfn.Vfn`, kind ``vfn``) for RAR.

        A file without a kind (a bare state dict) loads when its tensors fit; F3's
        ``vfn_foundation.safetensors`` is refused by kind: it holds the scaled VFN, not this one."""
        from voltx import artifacts

        how = "--vfn takes the small VFN's weights (voltx.engine.vfn.Vfn: dim 256, hidden 512)."
        return artifacts.load_into(Vfn(), artifacts.read(path, "vfn", how, untagged=True), how)

    def _core(self, frame: TensorFrame) -> tuple[TensorFrame, list[dict]]:
        """Route; if no strand activates, run RAR on R0 and route again. One proof per row.

        A row carrying a strand request skips RAR: only that strand can answer it.
        """
        proofs: list[dict] = [{"steps": [], "request": asked_of(frame, b)} for b in range(frame.batch_size)]
        first = self.router.route(frame)
        for b, d in enumerate(first):
            proofs[b]["steps"].append({"stage": "route", **d.as_dict()})
        todo = [b for b, d in enumerate(first) if not d.activated and not d.refused and proofs[b]["request"] is None]
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
        if not text.strip():
            raise UsageError('nothing to answer: the query is empty (e.g. voltx think "3 + 4")')
        frame = self.translator.encode(text)
        result = self.safety.run(frame, self._core)
        out = result.frame
        proof = result.proofs[0] or {"steps": []}
        active = out.mask[0, :, 0]
        gamma, weakest = min_rule(out.certainty[:1], out.mask[:1, :, 0])
        request = proof.get("request")
        answerer = _answerer(proof["steps"], result.vetoed[0], result.reasons[0], request is not None)
        if request is not None and answerer["strand"] is None and answerer["error"] is None and not result.vetoed[0]:
            answerer["error"] = _no_answer(request.strand, self._unanswered(request, proof["steps"]))
        answer = ""
        if not result.vetoed[0] and answerer["error"] is None:
            answer, answerer["error"] = self._decode(out)
        trace = {
            "input": text,
            "translator": getattr(self.translator, "name", type(self.translator).__name__),
            "safety_before": _verdict(result.before[0]),
            "safety_after": _verdict(result.after[0]),
            "vetoed": result.vetoed[0],
            "veto_reason": result.reasons[0],
            "routing": proof["steps"],
            "strands_unavailable": self.router.unavailable,
            "request": request.strand if request is not None else None,
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

    def _decode(self, frame: TensorFrame) -> tuple[str, dict | None]:
        """The translator's rendering of row 0, or the no-answer error when it renders nothing."""
        try:
            answer = self.translator.decode(frame, 0)
        except NoAnswerError as exc:
            return "", _no_answer(None, str(exc))
        if not answer.strip():
            name = getattr(self.translator, "name", type(self.translator).__name__)
            return "", _no_answer(None, f"the {name} translator rendered nothing from the frame")
        return answer, None

    def _unanswered(self, request: RequestKind, steps: list[dict]) -> str:
        """Why no strand answered a request for ``request.strand``, and how to get one that does."""
        name, what = request.strand, request.what
        in_use = [s.name for s in self.router.strands]
        if name in self.router.unavailable:
            return (f"{name} answers {what} but could not be built ({self.router.unavailable[name]}); "
                    "`voltx plugins` shows its plugin's status")
        if name not in in_use:
            return (f"{name} answers {what} but is not among the strands in use ({', '.join(in_use) or 'none'}): "
                    f"add it (--strands {','.join([*in_use, name])}) or leave --strands out to use every installed strand")
        failed = next((s for s in steps if s.get("strand") == name and s.get("failed")), None)
        if failed is not None:
            return f"{name} answers {what} but failed on it ({failed.get('error')}): a bug in that strand, please report it"
        return f"{name} answers {what} but did not take the request ({steps[-1]['description'] if steps else 'not routed'})"


def _no_answer(strand: str | None, message: str) -> dict:
    return {"kind": "no_answer", "strand": strand, "message": message, "exit_code": EXIT_UNAVAILABLE}


def _answerer(steps: list[dict], vetoed: bool, veto_reason: str | None, request: bool) -> dict:
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
                "error": {"kind": "refused", "strand": refused["strand"], "message": message, "exit_code": refused["exit_code"]}}
    why = "; ".join(dict.fromkeys(s["description"] for s in routes if s.get("description")))
    then = "" if request else "; the translator decoded the slots RAR refined"  # a request skips RAR (see _core)
    return {"strand": None, "reason": f"no strand answered ({why}){then}", "exact": False, "error": None}
