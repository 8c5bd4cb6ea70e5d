"""TensorFrame: the fixed-shape, slot-structured representation the engine passes around.

A frame holds up to ``MAX_SLOTS`` role slots, each at ``NUM_RESOLUTIONS`` levels of
detail (R0 = the coarse gist vector, R1-R3 finer ones), plus a mask saying which
(slot, resolution) cells are filled and a per-slot certainty in [0, 1].

This is the deliberately minimal, *batched* version the code encoder and decoder need:
they only ever fill R0.  Keeping the full ``[B, 16, 4, 256]`` layout now means the
later, richer frame (resolution-aware operations, serialisation) can grow without the
encoder/decoder changing shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

MAX_SLOTS = 16
NUM_RESOLUTIONS = 4
SLOT_DIM = 256

# Slot i carries role ROLE_NAMES[i].  The first nine are the fixed semantic roles;
# Free0..Free6 are unassigned slots a phase may use as it likes.
ROLE_NAMES: tuple[str, ...] = (
    "Agent",
    "Predicate",
    "Patient",
    "Location",
    "Time",
    "Manner",
    "Instrument",
    "Cause",
    "Result",
    *(f"Free{i}" for i in range(7)),
)
assert len(ROLE_NAMES) == MAX_SLOTS


@dataclass
class TensorFrame:
    """A batch of frames.

    Attributes:
        data: float ``[B, MAX_SLOTS, NUM_RESOLUTIONS, D]`` slot vectors (D is
            ``SLOT_DIM`` for the standard model; only the shape prefix is enforced so
            small test models can use a smaller D).
        mask: bool ``[B, MAX_SLOTS, NUM_RESOLUTIONS]``; True where a cell is filled.
            Unfilled cells of ``data`` are zero.
        certainty: float ``[B, MAX_SLOTS]`` in [0, 1]; 0 for empty slots.
    """

    data: Tensor
    mask: Tensor
    certainty: Tensor

    def __post_init__(self) -> None:
        # Shape mistakes here surface far away (inside attention); fail at construction.
        if self.data.dim() != 4 or tuple(self.data.shape[1:3]) != (MAX_SLOTS, NUM_RESOLUTIONS):
            raise ValueError(
                f"TensorFrame.data must be [B, {MAX_SLOTS}, {NUM_RESOLUTIONS}, D], "
                f"got {list(self.data.shape)}"
            )
        b = self.data.shape[0]
        if tuple(self.mask.shape) != (b, MAX_SLOTS, NUM_RESOLUTIONS):
            raise ValueError(
                f"TensorFrame.mask must be [{b}, {MAX_SLOTS}, {NUM_RESOLUTIONS}], "
                f"got {list(self.mask.shape)}"
            )
        if self.mask.dtype != torch.bool:
            raise ValueError(f"TensorFrame.mask must be bool, got {self.mask.dtype}")
        if tuple(self.certainty.shape) != (b, MAX_SLOTS):
            raise ValueError(
                f"TensorFrame.certainty must be [{b}, {MAX_SLOTS}], got {list(self.certainty.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return self.data.shape[0]

    @property
    def slot_dim(self) -> int:
        return self.data.shape[-1]

    def r0(self) -> Tensor:
        """The coarse (R0) vector of every slot: ``[B, MAX_SLOTS, D]``."""
        return self.data[:, :, 0]

    def active_slots(self) -> Tensor:
        """bool ``[B, MAX_SLOTS]``: slots with at least one filled resolution."""
        return self.mask.any(dim=-1)

    @classmethod
    def from_r0(cls, slots: Tensor, certainty: Tensor, active: Tensor) -> "TensorFrame":
        """Build frames whose only content is R0.

        ``slots`` ``[B, MAX_SLOTS, D]``, ``certainty`` ``[B, MAX_SLOTS]``, ``active``
        bool ``[B, MAX_SLOTS]``.  Inactive slots are stored as zero vectors with zero
        certainty whatever the inputs say, so "inactive" has one representation.
        """
        if slots.dim() != 3 or slots.shape[1] != MAX_SLOTS:
            raise ValueError(f"slots must be [B, {MAX_SLOTS}, D], got {list(slots.shape)}")
        b, _, d = slots.shape
        active = active.to(torch.bool)
        data = slots.new_zeros(b, MAX_SLOTS, NUM_RESOLUTIONS, d)
        data[:, :, 0] = slots * active.unsqueeze(-1).to(slots.dtype)
        mask = torch.zeros(b, MAX_SLOTS, NUM_RESOLUTIONS, dtype=torch.bool, device=slots.device)
        mask[:, :, 0] = active
        return cls(data=data, mask=mask, certainty=certainty * active.to(certainty.dtype))

    def to(self, device: torch.device | str) -> "TensorFrame":
        return TensorFrame(
            data=self.data.to(device), mask=self.mask.to(device), certainty=self.certainty.to(device)
        )
