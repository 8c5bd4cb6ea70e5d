"""Safety: the K1-K5 axioms, the monitor that checks frames against them, and the layer
that vetoes a pipeline's input or output (volt-x-original.md section 5, ``volt-safety``).

* Axioms: a unit vector, a cosine threshold and a severity each. The defaults are the
  original's: K1_harm, K2_deception, K3_privacy, K5_integrity at 0.7 with severity Halt,
  K4_autonomy at 0.65 with severity Warning; vectors from the seeded recipe
  (``seeded_unit_vector(SEEDS["K1"])`` ...). Phase JA refines the vectors; a refined set
  is saved and loaded as safetensors (:meth:`SafetyMonitor.save` / :meth:`SafetyMonitor.load`).
* Monitor: for every active slot's R0 vector and every axiom, ``cos > threshold`` is a
  violation. Scorer: weight 1.0 for Halt, 0.5 for Warning; ``weighted = cos * weight``;
  aggregate = max weighted (0 when clean); level Halt if any Halt violation, else
  Warning if any violation, else Pass.
* Veto (the original's OmegaVeto): a halted frame is replaced by an empty safe frame
  (no slots, gamma 0, ``verified = False``) and the reason is logged as
  ``VIOLATION: axiom=K1_harm, slot=S3, similarity=0.9731, severity=Halt, weighted=0.9731``.
* Layer: check before the pipeline (a Halt vetoes and the pipeline never sees the frame,
  so there is no proof), run the pipeline, check after (a Halt vetoes the output but the
  proof is kept). Warnings are reported and never block.

Everything is batched over frames and runs on the frames' device.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from voltx.engine.frame import MAX_SLOTS, TensorFrame
from voltx.engine.seeded import SEEDS, seeded_unit_vector
from voltx.errors import DataError

log = logging.getLogger("voltx.safety")

FORMAT_VERSION = 1
NORM_EPS = 1e-10


class Severity(str, Enum):
    HALT = "Halt"
    WARNING = "Warning"

    @property
    def weight(self) -> float:
        return 1.0 if self is Severity.HALT else 0.5


class SafetyLevel(str, Enum):
    PASS = "Pass"
    WARNING = "Warning"
    HALT = "Halt"


@dataclass(frozen=True)
class Axiom:
    name: str
    vector: Tensor
    """float32 ``[D]``, unit norm."""
    threshold: float
    """A slot whose R0 cosine with ``vector`` is strictly above this violates the axiom."""
    severity: Severity


# (name, seed key, threshold, severity): the original's five axioms, in its order.
DEFAULT_AXIOMS: tuple[tuple[str, str, float, Severity], ...] = (
    ("K1_harm", "K1", 0.7, Severity.HALT),
    ("K2_deception", "K2", 0.7, Severity.HALT),
    ("K3_privacy", "K3", 0.7, Severity.HALT),
    ("K4_autonomy", "K4", 0.65, Severity.WARNING),
    ("K5_integrity", "K5", 0.7, Severity.HALT),
)


def default_axioms() -> list[Axiom]:
    return [Axiom(name, seeded_unit_vector(SEEDS[key]), threshold, sev) for name, key, threshold, sev in DEFAULT_AXIOMS]


@dataclass(frozen=True)
class Violation:
    axiom: str
    slot: int
    similarity: float
    severity: Severity
    weighted: float

    def reason(self) -> str:
        return (
            f"VIOLATION: axiom={self.axiom}, slot=S{self.slot}, similarity={self.similarity:.4f}, "
            f"severity={self.severity.value}, weighted={self.weighted:.4f}"
        )


@dataclass(frozen=True)
class SafetyVerdict:
    """The check of one frame."""

    level: SafetyLevel
    violations: tuple[Violation, ...] = ()
    aggregate: float = 0.0
    """Max of ``similarity * weight`` over the violations; 0 when there are none."""

    @property
    def halted(self) -> bool:
        return self.level is SafetyLevel.HALT

    def reason(self) -> str | None:
        """The veto reason: the strongest Halt violation (None unless halted)."""
        halts = [v for v in self.violations if v.severity is Severity.HALT]
        return max(halts, key=lambda v: v.weighted).reason() if halts else None


class SafetyMonitor:
    """Checks the R0 vector of every active slot against a set of axioms."""

    def __init__(self, axioms: list[Axiom] | None = None):
        axioms = list(default_axioms() if axioms is None else axioms)
        if not axioms:
            raise ValueError("a SafetyMonitor needs at least one axiom")
        names = [a.name for a in axioms]
        if len(set(names)) != len(names):
            raise ValueError(f"axiom names must be unique, got {names}")
        self.vectors = _unit_rows(torch.stack([a.vector.detach().float().cpu() for a in axioms]), "axiom vectors")
        self.axioms = [dataclasses.replace(a, vector=v) for a, v in zip(axioms, self.vectors)]
        self.thresholds = torch.tensor([float(a.threshold) for a in axioms])
        self.weights = torch.tensor([a.severity.weight for a in axioms])
        self._halt = torch.tensor([a.severity is Severity.HALT for a in axioms])

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.axioms]

    def with_vectors(self, vectors: Tensor) -> "SafetyMonitor":
        """The same axioms (names, thresholds, severities) with refined vectors ``[A, D]``."""
        if vectors.dim() != 2 or vectors.shape[0] != len(self.axioms):
            raise ValueError(f"expected [{len(self.axioms)}, D] axiom vectors, got {list(vectors.shape)}")
        rows = _unit_rows(vectors.detach().float().cpu(), "axiom vectors")
        return SafetyMonitor([dataclasses.replace(a, vector=v) for a, v in zip(self.axioms, rows)])

    def similarities(self, slots: Tensor, active: Tensor) -> Tensor:
        """Cosine of every (frame, slot, axiom): ``[B, 16, A]``; 0 for inactive or zero slots."""
        if slots.dim() != 3 or slots.shape[1] != MAX_SLOTS or slots.shape[2] != self.vectors.shape[1]:
            raise ValueError(f"slots must be [B, {MAX_SLOTS}, {self.vectors.shape[1]}], got {list(slots.shape)}")
        if tuple(active.shape) != tuple(slots.shape[:2]):
            raise ValueError(f"active must be [B, {MAX_SLOTS}] like slots, got {list(active.shape)}")
        vectors = self.vectors.to(slots.device)
        cos = F.normalize(slots.float(), dim=-1, eps=NORM_EPS) @ vectors.T
        return cos * active.to(slots.device, torch.bool).unsqueeze(-1)

    def check(self, slots: Tensor, active: Tensor) -> list[SafetyVerdict]:
        """One verdict per frame for R0 ``slots [B, 16, D]`` and bool ``active [B, 16]``."""
        cos = self.similarities(slots, active)
        hits = cos > self.thresholds.to(cos.device)
        found = hits.nonzero().tolist()  # one device sync for the whole batch
        values = cos[hits].tolist()
        per_frame: list[list[Violation]] = [[] for _ in range(slots.shape[0])]
        for (b, slot, a), sim in zip(found, values):
            axiom = self.axioms[a]
            per_frame[b].append(Violation(axiom.name, slot, sim, axiom.severity, sim * axiom.severity.weight))
        return [_verdict(v) for v in per_frame]

    def check_frame(self, frame: TensorFrame) -> list[SafetyVerdict]:
        return self.check(frame.r0(), frame.active_slots())

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Axiom vectors and thresholds as safetensors; names and severities in JSON metadata."""
        from voltx import artifacts

        return artifacts.save(path, {"vectors": self.vectors, "thresholds": self.thresholds}, "safety_axioms",
                              version=FORMAT_VERSION, names=self.names, severities=[a.severity.value for a in self.axioms])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "SafetyMonitor":
        from voltx import artifacts

        art = artifacts.read(path, "safety_axioms", what="safety axiom")
        path, tensors = art.path, art.tensors
        try:
            names, severities = list(art.meta["names"]), [Severity(s) for s in art.meta["severities"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: missing or bad safety-axiom metadata ({exc})") from None
        vectors, thresholds = tensors.get("vectors"), tensors.get("thresholds")
        n = len(names)
        if vectors is None or thresholds is None or vectors.dim() != 2 or vectors.shape[0] != n or tuple(thresholds.shape) != (n,) or len(severities) != n:
            raise DataError(f"{path}: expected 'vectors' [{n}, D] and 'thresholds' [{n}] for {n} named axioms")
        try:
            return cls([Axiom(nm, v, float(t), s) for nm, v, t, s in zip(names, vectors, thresholds.tolist(), severities)])
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None


def _unit_rows(rows: Tensor, what: str) -> Tensor:
    if not torch.isfinite(rows).all():
        raise ValueError(f"{what} contain NaN or inf")
    norms = rows.norm(dim=1, keepdim=True)
    if (norms < NORM_EPS).any():
        raise ValueError(f"{what} include a zero vector")
    # rows already unit to float32 rounding stay bit for bit (the seeded vectors; save -> load)
    return rows / torch.where((norms - 1.0).abs() <= 1e-6, torch.ones_like(norms), norms)


def _verdict(violations: list[Violation]) -> SafetyVerdict:
    if not violations:
        return SafetyVerdict(SafetyLevel.PASS)
    halt = any(v.severity is Severity.HALT for v in violations)
    return SafetyVerdict(
        SafetyLevel.HALT if halt else SafetyLevel.WARNING,
        tuple(violations),
        max(v.weighted for v in violations),
    )


# --- the layer around a pipeline ---------------------------------------------------------------


@dataclass
class SafetyResult:
    """What :meth:`SafetyLayer.run` returns for a batch of ``B`` frames."""

    frame: TensorFrame
    """The pipeline's output, with vetoed rows replaced by empty safe frames."""
    vetoed: list[bool]
    reasons: list[str | None]
    """The logged VIOLATION line of each vetoed row."""
    before: list[SafetyVerdict]
    after: list[SafetyVerdict | None]
    """Post-check verdicts; None for rows vetoed before the pipeline (it never ran on them)."""
    proofs: list[Any] = field(default_factory=list)
    """The pipeline's proof per row (kept when the output is vetoed); None where it did not run."""

    @property
    def warnings(self) -> list[bool]:
        return [v.level is SafetyLevel.WARNING or (a is not None and a.level is SafetyLevel.WARNING)
                for v, a in zip(self.before, self.after)]


Pipeline = Callable[[TensorFrame], "TensorFrame | tuple[TensorFrame, list[Any]]"]


class SafetyLayer:
    """Wraps a pipeline with pre- and post-checks and the veto."""

    def __init__(self, monitor: SafetyMonitor | None = None):
        self.monitor = monitor or SafetyMonitor()

    def run(self, frame: TensorFrame, pipeline: Pipeline) -> SafetyResult:
        """Check ``frame``, run ``pipeline`` on the rows that passed, check its output.

        ``pipeline(frames)`` returns the output frames (same batch size as its input) or
        ``(frames, proofs)`` with one proof per row. It is not called at all when every
        row is vetoed by the pre-check.
        """
        b = frame.batch_size
        if b == 0:
            raise ValueError("SafetyLayer.run needs at least one frame")
        before = self.monitor.check_frame(frame)
        reasons: list[str | None] = [v.reason() for v in before]
        ok = [i for i in range(b) if not before[i].halted]
        for i in range(b):
            if reasons[i]:
                log.warning("safety veto before the pipeline (frame %d): %s", i, reasons[i])
        after: list[SafetyVerdict | None] = [None] * b
        proofs: list[Any] = [None] * b
        parts: list[TensorFrame] = []
        order: list[int] = []
        if ok:
            out = pipeline(frame if len(ok) == b else take_rows(frame, ok))
            out, row_proofs = out if isinstance(out, tuple) else (out, [None] * len(ok))
            if out.batch_size != len(ok) or len(row_proofs) != len(ok):
                raise ValueError(f"the pipeline returned {out.batch_size} frames and {len(row_proofs)} proofs for {len(ok)} input frames")
            checked = self.monitor.check_frame(out)
            keep = []
            for j, i in enumerate(ok):
                after[i], proofs[i] = checked[j], row_proofs[j]
                reasons[i] = checked[j].reason()
                if reasons[i]:
                    log.warning("safety veto after the pipeline (frame %d): %s", i, reasons[i])
                else:
                    keep.append(j)
            if keep:
                parts.append(out if len(keep) == len(ok) else take_rows(out, keep))
                order += [ok[j] for j in keep]
        vetoed = [r is not None for r in reasons]
        if any(vetoed):
            parts.append(TensorFrame.empty(sum(vetoed), device=frame.data.device, dim=frame.slot_dim))
            order += [i for i in range(b) if vetoed[i]]
        merged = parts[0] if len(parts) == 1 else cat_rows(parts)
        result = merged if order == list(range(b)) else take_rows(merged, sorted(range(b), key=order.__getitem__))
        return SafetyResult(result, vetoed, reasons, before, after, proofs)


def take_rows(frame: TensorFrame, rows: list[int]) -> TensorFrame:
    """Frames ``rows`` of a batch, in that order (every per-row field, metadata copied)."""
    index = torch.tensor(rows, dtype=torch.long, device=frame.data.device)
    values = {}
    for f in dataclasses.fields(frame):
        value = getattr(frame, f.name)
        values[f.name] = value.index_select(0, index) if isinstance(value, Tensor) else [dataclasses.replace(value[r]) for r in rows]
    return TensorFrame(**values)


def cat_rows(frames: list[TensorFrame]) -> TensorFrame:
    """Concatenate batches of frames along the batch dimension."""
    values = {}
    for f in dataclasses.fields(frames[0]):
        parts = [getattr(fr, f.name) for fr in frames]
        values[f.name] = torch.cat(parts) if isinstance(parts[0], Tensor) else [m for p in parts for m in p]
    return TensorFrame(**values)
