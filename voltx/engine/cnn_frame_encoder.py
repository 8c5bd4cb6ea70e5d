"""The CNN frame encoder: token ids -> per-token features, role logits and a TensorFrame.

One architecture for code (the translator, as the original's code encoder) and language
(F1-F3's language stack): only the tokenizer and the role labels differ.

Architecture (the original Volt X code encoder, 5,149,712 parameters at vocab 32768)::

    Embedding(vocab, 128)
    -> Conv1d(128->256, k3) + GELU -> Conv1d(256->256, k5) + GELU -> Conv1d(256->256, k7) + GELU
       = features [B, T, 256]
    role_head  Linear(256->16)  -> role_logits  (which slot each token belongs to)
    embed_head Linear(256->256) -> token_embeds (what each token contributes to it)

Resolutions filled: R0 (the role-weighted mean of the tokens) and R3 (the token level: the
role's most likely token); R1 and R2 stay empty.

The frame is built by soft-assigning tokens to slots: slot r's R0 vector is the
normalised, role-probability-weighted mean of the token embeddings.

Fix over the original: it was blind to padding, so the same snippet encoded
differently depending on how long the longest sequence in its batch was.  Here padded
positions are zeroed before every convolution (a right-padded row then sees exactly
the zeros an unpadded one sees at its edge) and are excluded from every pooling, so
encodings are invariant to padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx.engine.frame import MAX_SLOTS, TensorFrame
from voltx.engine.tokenizer import PAD_ID


@dataclass
class EncoderOutput:
    features: Tensor  # [B, T, hidden_dim], zero at padded positions
    role_logits: Tensor  # [B, T, num_roles]
    token_embeds: Tensor  # [B, T, slot_dim]
    summary: Tensor  # [B, slot_dim], L2-normalised mean of token_embeds over real tokens


ENCODER_KINDS = ("code_encoder", "lang_encoder")
"""Artifact kinds (voltx.artifacts) that hold a CnnFrameEncoder: the translator's and F1's."""


class CnnFrameEncoder(nn.Module):
    def __init__(
        self,
        vocab_size: int = 32768,
        embed_dim: int = 128,
        hidden_dim: int = 256,
        num_roles: int = 16,
        slot_dim: int = 256,
        max_seq_len: int = 512,
        role_threshold: float = 0.05,
        recency: bool = False,
    ):
        super().__init__()
        if num_roles != MAX_SLOTS:
            # Role r is written to frame slot r; any other count cannot form a frame.
            raise ValueError(f"num_roles must equal MAX_SLOTS ({MAX_SLOTS}), got {num_roles}")
        self.vocab_size = vocab_size
        self.num_roles = num_roles
        self.slot_dim = slot_dim
        self.max_seq_len = max_seq_len
        self.role_threshold = role_threshold
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.recency = recency
        if recency:
            # Where a token stands, counted from the end of its row: the convolutions see ~13
            # tokens and the pooling none, so without it a story's frame cannot tell its last
            # fact from its first (bAbI asks exactly that). From the end, not the start, so a
            # right-padded row encodes as the same row unpadded.
            self.recency_embedding = nn.Embedding(max_seq_len, embed_dim)
            nn.init.normal_(self.recency_embedding.weight, std=0.1)
        self.convs = nn.ModuleList(
            [
                nn.Conv1d(embed_dim, hidden_dim, kernel_size=3, padding=1),
                nn.Conv1d(hidden_dim, hidden_dim, kernel_size=5, padding=2),
                nn.Conv1d(hidden_dim, hidden_dim, kernel_size=7, padding=3),
            ]
        )
        self.role_head = nn.Linear(hidden_dim, num_roles)
        self.embed_head = nn.Linear(hidden_dim, slot_dim)

    def init_args(self) -> dict:
        """The constructor arguments that rebuild this encoder (an artifact's ``args``)."""
        return {"vocab_size": self.vocab_size, "embed_dim": self.embedding.embedding_dim, "hidden_dim": self.role_head.in_features,
                "slot_dim": self.slot_dim, "max_seq_len": self.max_seq_len, "role_threshold": self.role_threshold,
                **({"recency": True} if self.recency else {})}

    def forward(self, ids: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """Encode right-padded ``ids`` ``[B, T]``; ``mask`` is True at real tokens.

        Without a mask, every non-``PAD_ID`` token counts as real.
        """
        if ids.dim() != 2:
            raise ValueError(f"ids must be [B, T], got {list(ids.shape)}")
        if ids.shape[1] > self.max_seq_len:
            raise ValueError(
                f"sequence length {ids.shape[1]} exceeds max_seq_len {self.max_seq_len}; "
                "truncate when encoding (encode_batch(..., max_len=...))"
            )
        if mask is None:
            mask = ids.ne(PAD_ID)
        keep = mask.unsqueeze(1).to(self.embedding.weight.dtype)  # [B, 1, T]
        x = self.embedding(ids)
        if self.recency:
            from_end = (mask.long().sum(1, keepdim=True) - 1 - torch.arange(ids.shape[1], device=ids.device)).clamp_min(0)
            x = x + self.recency_embedding(from_end)
        x = x.transpose(1, 2)  # [B, C, T] for Conv1d
        for conv in self.convs:
            x = F.gelu(conv(x * keep))
        features = (x * keep).transpose(1, 2)  # [B, T, hidden]
        role_logits = self.role_head(features)
        token_embeds = self.embed_head(features)
        m = mask.unsqueeze(-1).to(token_embeds.dtype)
        mean = (token_embeds * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
        summary = F.normalize(mean, dim=-1)  # an all-padding row stays the zero vector
        return EncoderOutput(features, role_logits, token_embeds, summary)

    def slot_context(self, out: EncoderOutput, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Per-slot R0 vectors ``[B, 16, slot_dim]`` and bool ``active`` ``[B, 16]``.

        This is what the decoder cross-attends to.  Slot r is the L2-normalised mean
        of token embeddings weighted by p(role r | token) over real tokens; it is
        active only if its total weight exceeds ``role_threshold`` (inactive slots
        are zero).
        """
        slots, active, _ = self._slots(out, mask)
        return slots, active

    def token_slots(self, out: EncoderOutput, mask: Tensor) -> Tensor:
        """R3, the token level ``[B, 16, slot_dim]``: slot r's vector is the normalised embedding
        of the one real token most likely in role r (zero for a row without real tokens).
        R0 pools every token of the role; R3 keeps the single token that defines it."""
        probs = out.role_logits.softmax(dim=-1).masked_fill(~mask.unsqueeze(-1), -1.0)  # [B, T, R]
        best = probs.argmax(dim=1)  # [B, R]
        emb = out.token_embeds.gather(1, best.unsqueeze(-1).expand(-1, -1, out.token_embeds.shape[-1]))
        return F.normalize(emb, dim=-1) * mask.any(-1)[:, None, None].to(emb.dtype)

    def to_frame(self, out: EncoderOutput, mask: Tensor) -> TensorFrame:
        """A TensorFrame whose R0 is :meth:`slot_context` and R3 :meth:`token_slots` (on the
        active slots); certainty = min(weight, 1)."""
        slots, active, weight = self._slots(out, mask)
        frame = TensorFrame.from_r0(slots, weight.clamp(max=1.0), active)
        frame.data[:, :, 3] = self.token_slots(out, mask).float() * active.unsqueeze(-1)
        frame.mask[:, :, 3] = active
        return frame

    def _slots(self, out: EncoderOutput, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        emb = out.token_embeds
        probs = out.role_logits.softmax(dim=-1) * mask.unsqueeze(-1).to(emb.dtype)  # [B, T, R]
        weight = probs.sum(dim=1)  # [B, R]
        pooled = torch.einsum("btr,btd->brd", probs, emb) / weight.clamp_min(1e-9).unsqueeze(-1)
        active = weight > self.role_threshold
        slots = F.normalize(pooled, dim=-1) * active.unsqueeze(-1).to(emb.dtype)
        return slots, active, weight
