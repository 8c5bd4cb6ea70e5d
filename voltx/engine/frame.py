"""TensorFrame: the fixed-shape, slot-structured representation the engine passes around.

Layout (one batch of B frames, all tensors on one device)::

    data          float32 [B, 16, 4, D]  slot x resolution vectors (D = SLOT_DIM = 256;
                                         only the prefix is enforced so tests may use a small D)
    mask          bool    [B, 16, 4]     True where a (slot, resolution) cell is filled;
                                         unfilled cells of ``data`` are zero
    certainty     float32 [B, 16]        gamma per slot in [0, 1]; 0 for empty slots
    role          int64   [B, 16]        SlotRole per slot; an empty slot has its own index
    source        int64   [B, 16]        Source per slot; Source.EMPTY for empty slots
    needs_verify  bool    [B, 16]
    meta          list[FrameMeta]        one per row (ids, discourse, RAR/proof counters)

A slot is *active* when any of its resolutions is filled. R0 is the gist, R1 the
proposition, R2 the phrase and R3 the token level.

Protocol (as in the original Volt X, volt-core): ``write`` never normalises (Hard-Core
strands store raw numbers); a slot's role is set only when a write creates the slot;
``clear`` resets the slot's metadata too; ``merge`` keeps, per slot, the side with the
higher gamma (tie: self); ``global_certainty`` is the minimum gamma over active slots.
The single-row methods (write/read/clear, ``b=`` picks the row) mutate in place; the
batched ones (merge, normalized, to, clone) return new frames.

On disk (``save``/``load``) a frame batch is one safetensors file holding the six
tensors under their field names, with the FrameMeta list as JSON in the header's
metadata (``voltx.frame.meta``); nothing is pickled.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from enum import IntEnum
from numbers import Integral
from pathlib import Path

import torch
from torch import Tensor

from voltx.errors import EXIT_DATA, MissingInputError, VoltxError

MAX_SLOTS = 16
NUM_RESOLUTIONS = 4
SLOT_DIM = 256
NORM_EPS = 1e-10  # the original's cutoff: a vector whose L2 norm is below it cannot be normalised


class FrameError(VoltxError):
    """A malformed frame, an out-of-range slot/resolution, or a bad frame file."""

    exit_code = EXIT_DATA


class SlotRole(IntEnum):
    AGENT = 0
    PREDICATE = 1
    PATIENT = 2
    LOCATION = 3
    TIME = 4
    MANNER = 5
    INSTRUMENT = 6
    CAUSE = 7
    RESULT = 8
    FREE0 = 9
    FREE1 = 10
    FREE2 = 11
    FREE3 = 12
    FREE4 = 13
    FREE5 = 14
    FREE6 = 15


class Source(IntEnum):
    EMPTY = 0
    TRANSLATOR = 1
    SOFT_CORE = 2
    HARD_CORE = 3
    MEMORY = 4
    PERSONAL = 5


class Discourse(IntEnum):
    QUERY = 0
    STATEMENT = 1
    COMMAND = 2
    RESPONSE = 3
    CREATIVE = 4
    UNKNOWN = 5


# Slot i carries role ROLE_NAMES[i] by default: "Agent" ... "Result", "Free0" ... "Free6".
ROLE_NAMES: tuple[str, ...] = tuple(r.name.capitalize() for r in SlotRole)
assert len(ROLE_NAMES) == MAX_SLOTS


def now_us() -> int:
    """Microseconds since the epoch (the original's timestamp unit)."""
    return time.time_ns() // 1000


@dataclass
class FrameMeta:
    """Per-frame (per batch row) metadata."""

    frame_id: int = 0
    strand_id: int = 0
    discourse: Discourse = Discourse.UNKNOWN
    created_at: int = field(default_factory=now_us)  # µs since epoch
    rar_iterations: int = 0
    verified: bool = False
    proof_length: int = 0

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "discourse": int(self.discourse)}

    @classmethod
    def from_json(cls, obj: dict) -> "FrameMeta":
        """Inverse of :meth:`to_json`; raises KeyError/TypeError/ValueError on bad input."""
        names = {f.name for f in dataclasses.fields(cls)}
        if set(obj) != names:
            raise ValueError(f"keys {sorted(obj)} != {sorted(names)}")
        ints = {k: obj[k] for k in names - {"verified", "discourse"}}
        if not all(type(v) is int and v >= 0 for v in ints.values()) or type(obj["verified"]) is not bool:
            raise TypeError(f"expected non-negative integer counters and a boolean 'verified', got {obj}")
        return cls(**ints, discourse=Discourse(obj["discourse"]), verified=obj["verified"])


# field -> (dtype, shape after the batch dim; "D" = the slot dimension)
_LAYOUT: dict[str, tuple[torch.dtype, tuple]] = {
    "data": (torch.float32, (MAX_SLOTS, NUM_RESOLUTIONS, "D")),
    "mask": (torch.bool, (MAX_SLOTS, NUM_RESOLUTIONS)),
    "certainty": (torch.float32, (MAX_SLOTS,)),
    "role": (torch.int64, (MAX_SLOTS,)),
    "source": (torch.int64, (MAX_SLOTS,)),
    "needs_verify": (torch.bool, (MAX_SLOTS,)),
}
_META_KEY = "voltx.frame.meta"


def _check_index(name: str, value: int, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value < limit:  # numpy ints too
        raise FrameError(f"{name} must be an integer in 0..{limit - 1}, got {value!r}")
    return int(value)


@dataclass
class TensorFrame:
    """A batch of frames; see the module docstring for the layout and protocol."""

    data: Tensor
    mask: Tensor
    certainty: Tensor
    role: Tensor
    source: Tensor
    needs_verify: Tensor
    meta: list[FrameMeta]

    def __post_init__(self) -> None:
        # Shape mistakes surface far away (inside attention); fail here. Only metadata is
        # inspected, never values, so construction never synchronises with a GPU.
        if not isinstance(self.data, Tensor) or self.data.dim() != 4:
            got = list(self.data.shape) if isinstance(self.data, Tensor) else type(self.data).__name__
            raise FrameError(f"TensorFrame.data: expected [B, {MAX_SLOTS}, {NUM_RESOLUTIONS}, D], got {got}")
        b, d = self.data.shape[0], self.data.shape[-1]
        for name, (dtype, tail) in _LAYOUT.items():
            t = getattr(self, name)
            want = (b, *(d if x == "D" else x for x in tail))
            if not isinstance(t, Tensor):
                raise FrameError(f"TensorFrame.{name}: expected a tensor {list(want)}, got {type(t).__name__}")
            if tuple(t.shape) != want:
                raise FrameError(f"TensorFrame.{name}: expected shape {list(want)}, got {list(t.shape)}")
            if t.dtype != dtype:
                raise FrameError(f"TensorFrame.{name}: expected dtype {dtype}, got {t.dtype}")
            if t.device != self.data.device:
                raise FrameError(f"TensorFrame.{name}: expected device {self.data.device} (as data), got {t.device}")
        if not isinstance(self.meta, list) or len(self.meta) != b:
            got = len(self.meta) if isinstance(self.meta, list) else type(self.meta).__name__
            raise FrameError(f"TensorFrame.meta: expected a list of {b} FrameMeta, got {got}")
        if not all(isinstance(m, FrameMeta) for m in self.meta):
            raise FrameError("TensorFrame.meta: expected FrameMeta items")

    # -- constructors ------------------------------------------------------------------

    @classmethod
    def empty(cls, batch: int = 1, device: torch.device | str | None = None, *, dim: int = SLOT_DIM) -> "TensorFrame":
        """``batch`` frames with every slot empty."""
        kw = {"device": device}
        return cls(
            data=torch.zeros(batch, MAX_SLOTS, NUM_RESOLUTIONS, dim, **kw),
            mask=torch.zeros(batch, MAX_SLOTS, NUM_RESOLUTIONS, dtype=torch.bool, **kw),
            certainty=torch.zeros(batch, MAX_SLOTS, **kw),
            role=torch.arange(MAX_SLOTS, **kw).repeat(batch, 1),
            source=torch.full((batch, MAX_SLOTS), int(Source.EMPTY), **kw),
            needs_verify=torch.zeros(batch, MAX_SLOTS, dtype=torch.bool, **kw),
            meta=[FrameMeta() for _ in range(batch)],
        )

    @classmethod
    def from_r0(
        cls, slots: Tensor, certainty: Tensor, active: Tensor, *, source: Source = Source.TRANSLATOR
    ) -> "TensorFrame":
        """Build frames whose only content is R0.

        ``slots`` ``[B, MAX_SLOTS, D]``, ``certainty`` ``[B, MAX_SLOTS]``, ``active``
        bool ``[B, MAX_SLOTS]``.  Inactive slots are stored as zero vectors with zero
        certainty and Source.EMPTY whatever the inputs say, so "inactive" has one
        representation; active slots get ``source`` and the default role (slot index).
        """
        if slots.dim() != 3 or slots.shape[1] != MAX_SLOTS or not certainty.shape == active.shape == slots.shape[:2]:
            raise FrameError(
                f"from_r0: expected slots [B, {MAX_SLOTS}, D], certainty and active [B, {MAX_SLOTS}], got "
                f"{list(slots.shape)}, {list(certainty.shape)}, {list(active.shape)}"
            )
        b, _, d = slots.shape
        active = active.to(torch.bool)
        frame = cls.empty(b, slots.device, dim=d)
        frame.data[:, :, 0] = slots.float() * active.unsqueeze(-1)
        frame.mask[:, :, 0] = active
        return dataclasses.replace(frame, certainty=certainty.float() * active, source=active.long() * int(source))

    # -- properties and batched views ----------------------------------------------------

    @property
    def batch_size(self) -> int:
        return self.data.shape[0]

    @property
    def slot_dim(self) -> int:
        return self.data.shape[-1]

    def active_slots(self) -> Tensor:
        """bool ``[B, MAX_SLOTS]``: slots with at least one filled resolution."""
        return self.mask.any(dim=-1)

    def at(self, res: int) -> Tensor:
        """The resolution-``res`` vector of every slot: ``[B, MAX_SLOTS, D]`` (a view)."""
        return self.data[:, :, _check_index("res", res, NUM_RESOLUTIONS)]

    def r0(self) -> Tensor:
        """The coarse (R0) vector of every slot: ``[B, MAX_SLOTS, D]`` (a view)."""
        return self.data[:, :, 0]

    def global_certainty(self) -> Tensor:
        """float ``[B]``: min gamma over active slots (the original's min-rule), 0 if none."""
        active = self.active_slots()
        inf = torch.full_like(self.certainty, float("inf"))
        lowest = torch.where(active, self.certainty, inf).amin(dim=-1)
        return torch.where(active.any(dim=-1), lowest, torch.zeros_like(lowest))

    # -- single-row convenience (in place) -----------------------------------------------

    def _row(self, b: int) -> int:
        return _check_index("b (batch row)", b, self.batch_size)

    def write(
        self, slot: int, res: int, vec: Tensor, *, b: int = 0,
        role: int | None = None, certainty: float | None = None, source: int | None = None,
    ) -> None:
        """Store ``vec`` ``[D]`` at (slot, res) of row ``b``; never normalises.

        ``role`` is used only when this write creates the slot (it was empty);
        ``certainty`` and ``source`` are set when given and left as they are otherwise.
        """
        slot, res, b = _check_index("slot", slot, MAX_SLOTS), _check_index("res", res, NUM_RESOLUTIONS), self._row(b)
        if not isinstance(vec, Tensor) or tuple(vec.shape) != (self.slot_dim,):
            got = list(vec.shape) if isinstance(vec, Tensor) else type(vec).__name__
            raise FrameError(f"write vec: expected shape [{self.slot_dim}], got {got}")
        if certainty is not None and not 0.0 <= float(certainty) <= 1.0:
            raise FrameError(f"write certainty: expected a value in [0, 1], got {certainty}")
        try:
            role = None if role is None else int(SlotRole(role))
            source = None if source is None else int(Source(source))
        except ValueError as exc:
            raise FrameError(f"write: {exc} (roles 0..15, sources 0..5)") from None
        if role is not None and not bool(self.mask[b, slot].any()):
            self.role[b, slot] = role
        self.data[b, slot, res] = vec.to(self.data)
        self.mask[b, slot, res] = True
        if certainty is not None:
            self.certainty[b, slot] = float(certainty)
        if source is not None:
            self.source[b, slot] = source

    def read(self, slot: int, res: int, *, b: int = 0) -> Tensor | None:
        """A copy of the vector at (slot, res) of row ``b``, or None if that cell is empty."""
        slot, res, b = _check_index("slot", slot, MAX_SLOTS), _check_index("res", res, NUM_RESOLUTIONS), self._row(b)
        return self.data[b, slot, res].clone() if bool(self.mask[b, slot, res]) else None

    def clear(self, slot: int, *, b: int = 0) -> None:
        """Empty ``slot`` of row ``b``, resetting its metadata (role back to the slot index)."""
        slot, b = _check_index("slot", slot, MAX_SLOTS), self._row(b)
        self.data[b, slot] = 0.0
        self.mask[b, slot] = False
        self.certainty[b, slot] = 0.0
        self.role[b, slot] = slot
        self.source[b, slot] = int(Source.EMPTY)
        self.needs_verify[b, slot] = False

    # -- batched operations (new frames) -------------------------------------------------

    def merge(self, other: "TensorFrame") -> "TensorFrame":
        """Per slot keep the side with the higher gamma (tie -> self; an empty side loses).

        The whole slot moves together (vectors, mask, gamma, role, source, needs_verify).
        Meta per row as in the original: frame_id 0, strand and discourse from self,
        created_at now, rar_iterations summed, verified False, proof_length the max.
        """
        if not isinstance(other, TensorFrame):
            raise FrameError(f"merge: expected a TensorFrame, got {type(other).__name__}")
        if other.data.shape != self.data.shape or other.data.device != self.data.device:
            raise FrameError(
                f"merge: frames differ: {list(self.data.shape)} on {self.data.device} "
                f"vs {list(other.data.shape)} on {other.data.device}"
            )
        mine, theirs = self.active_slots(), other.active_slots()
        take = theirs & (~mine | (other.certainty > self.certainty))  # [B, 16]

        def pick(a: Tensor, o: Tensor) -> Tensor:
            return torch.where(take.view(*take.shape, *(1,) * (a.dim() - 2)), o, a)

        now = now_us()
        meta = [
            FrameMeta(frame_id=0, strand_id=left.strand_id, discourse=left.discourse, created_at=now,
                      rar_iterations=left.rar_iterations + right.rar_iterations, verified=False,
                      proof_length=max(left.proof_length, right.proof_length))
            for left, right in zip(self.meta, other.meta)
        ]
        return TensorFrame(
            **{name: pick(getattr(self, name), getattr(other, name)) for name in _LAYOUT}, meta=meta
        )

    def normalized(self) -> "TensorFrame":
        """A copy with every filled vector L2-normalised; FrameError if one has norm < 1e-10."""
        norms = torch.linalg.vector_norm(self.data, dim=-1)  # [B, 16, 4]
        bad = self.mask & ~((norms >= NORM_EPS) & torch.isfinite(norms))  # NaN fails >= too
        if bool(bad.any()):
            b, s, r = (int(i) for i in bad.nonzero()[0])
            raise FrameError(
                f"normalized: cannot normalise the vector at row {b}, slot {s}, resolution {r}: "
                f"L2 norm {float(norms[b, s, r]):.3g} is below {NORM_EPS} (a zero vector) or not finite"
            )
        scale = torch.where(self.mask, norms.clamp_min(NORM_EPS).reciprocal(), torch.zeros_like(norms))
        out = self.clone()
        out.data = self.data * scale.unsqueeze(-1)
        return out

    def _map(self, fn) -> "TensorFrame":
        tensors = {name: fn(getattr(self, name)) for name in _LAYOUT}
        return TensorFrame(**tensors, meta=[dataclasses.replace(m) for m in self.meta])

    def to(self, device: torch.device | str) -> "TensorFrame":
        return self._map(lambda t: t.to(device))

    def clone(self) -> "TensorFrame":
        return self._map(torch.Tensor.clone)

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the batch to ``path`` as safetensors (tensors) + JSON meta in the header."""
        from voltx.artifacts import write_safetensors

        tensors = {name: getattr(self, name) for name in _LAYOUT}
        header = {_META_KEY: json.dumps([m.to_json() for m in self.meta]), "format": "pt"}
        write_safetensors(tensors, path, header)  # atomic: a crash mid-write never leaves a torn file at path

    @classmethod
    def load(cls, path: str | Path, *, device: torch.device | str = "cpu") -> "TensorFrame":
        """Read a batch written by :meth:`save`; FrameError naming the file if it is malformed."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise MissingInputError(f"{path}: no such frame file")
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                header = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except Exception as exc:  # safetensors raises several types for a corrupt file
            raise FrameError(f"{path}: not a readable safetensors frame file ({exc})") from None
        missing = [name for name in _LAYOUT if name not in tensors]
        if missing:
            raise FrameError(f"{path}: missing tensor(s) {', '.join(missing)}; expected {', '.join(_LAYOUT)}")
        try:
            meta = [FrameMeta.from_json(obj) for obj in json.loads(header[_META_KEY])]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FrameError(f"{path}: bad or missing '{_META_KEY}' metadata in the header ({exc})") from None
        try:
            frame = cls(**{name: tensors[name] for name in _LAYOUT}, meta=meta)
        except FrameError as exc:
            raise FrameError(f"{path}: {exc}") from None
        return frame if torch.device(device) == frame.data.device else frame.to(device)
