"""The slot decoder: renders a frame as tokens, cross-attending to its slots.

One architecture for code (the translator's decoder, as the original's) and language
(F1-F3's language stack).

Architecture (the original Volt X decoder, single head, MODEL_DIM 256; 5,246,848
parameters at vocab 32768)::

    token_embed Embedding(vocab, 128)  (tied: also the output projection)
    input_proj  Linear(128->256) + learned positions [256, 256]
    x += SelfAttn(RMSNorm(x))     causal, q/k/v Linear(256->256), no output projection
    x += CrossAttn(RMSNorm(x))    q from x, k/v Linear(256->256) from the 16 slot vectors
    x += FFN(RMSNorm(x))          256 -> 1024 -> GELU -> 256
    logits = Linear(256->128)(x) @ token_embed.weight.T

Fixes over the original:

* it is trained on the same context it decodes from: the 16 R0 slot vectors plus an
  ``active`` mask (inactive slots take no part in cross-attention);
* a row whose slots are all inactive gets a zero cross-attention output instead of
  NaNs.  The original had no null slot; adding a learned one would change the
  parameter count, so the empty case is handled with a mask that keeps one
  position (to stay finite) and then zeroes the result;
* pad tokens are ignored by the loss and accuracy, and sequences are framed as
  ``BOS tokens`` -> ``tokens EOS`` so generation knows where to start and stop.

Parameter count at vocab V: 128V (embed) + 33,024 (input_proj) + 65,536 (positions)
+ 768 (3 RMSNorm weights) + 2 x 197,376 (q/k/v for self and cross) + 525,568 (FFN)
+ 32,896 (output_proj) = 128V + 1,052,544 = 5,246,848 at V = 32768.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from voltx.engine.tokenizer import BOS_ID, EOS_ID, PAD_ID

IGNORE_INDEX = -100


class SlotDecoder(nn.Module):
    def __init__(
        self,
        vocab_size: int = 32768,
        embed_dim: int = 128,
        model_dim: int = 256,
        ffn_dim: int = 1024,
        max_len: int = 256,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.model_dim = model_dim
        self.max_len = max_len
        self.token_embed = nn.Embedding(vocab_size, embed_dim)
        # Unit-norm-ish rows: the tied output then starts with O(1) logits instead of
        # nn.Embedding's N(0, 1) rows, whose logits would be ~sqrt(embed_dim) too big.
        nn.init.normal_(self.token_embed.weight, std=embed_dim**-0.5)
        self.input_proj = nn.Linear(embed_dim, model_dim)
        self.pos = nn.Parameter(torch.randn(max_len, model_dim) * 0.02)
        self.norm_self = nn.RMSNorm(model_dim, eps=1e-6)
        self.norm_cross = nn.RMSNorm(model_dim, eps=1e-6)
        self.norm_ffn = nn.RMSNorm(model_dim, eps=1e-6)
        self.q_self = nn.Linear(model_dim, model_dim)
        self.k_self = nn.Linear(model_dim, model_dim)
        self.v_self = nn.Linear(model_dim, model_dim)
        self.q_cross = nn.Linear(model_dim, model_dim)
        self.k_cross = nn.Linear(model_dim, model_dim)
        self.v_cross = nn.Linear(model_dim, model_dim)
        self.ffn = nn.Sequential(nn.Linear(model_dim, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, model_dim))
        self.output_proj = nn.Linear(model_dim, embed_dim)

    # -- pieces shared by forward() and the incremental path in generate() ---------

    def _embed(self, ids: Tensor, positions: slice) -> Tensor:
        return self.input_proj(self.token_embed(ids)) + self.pos[positions]

    def _cross_kv(self, context: Tensor, context_active: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if context.dim() != 3 or context.shape[-1] != self.model_dim:
            raise ValueError(f"context must be [B, S, {self.model_dim}], got {list(context.shape)}")
        active = context_active.to(torch.bool)
        has_any = active.any(dim=-1)  # [B]
        # Keep slot 0 attendable in empty rows so softmax stays finite; their output
        # is multiplied by has_any (0) afterwards.
        attend = active.clone()
        attend[:, 0] |= ~has_any
        return self.k_cross(context), self.v_cross(context), attend.unsqueeze(1), has_any

    def _cross(self, x: Tensor, k: Tensor, v: Tensor, attend: Tensor, has_any: Tensor) -> Tensor:
        q = self.q_cross(self.norm_cross(x))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        return out * has_any.to(out.dtype)[:, None, None]

    def _head(self, x: Tensor) -> Tensor:
        x = x + self.ffn(self.norm_ffn(x))
        return self.output_proj(x) @ self.token_embed.weight.T

    # -- public API ---------------------------------------------------------------------

    def init_args(self) -> dict:
        """The constructor arguments that rebuild this decoder (an artifact's ``args``)."""
        return {"vocab_size": self.vocab_size, "embed_dim": self.token_embed.embedding_dim, "model_dim": self.model_dim,
                "ffn_dim": self.ffn[0].out_features, "max_len": self.max_len}

    def forward(self, input_ids: Tensor, context: Tensor, context_active: Tensor) -> Tensor:
        """Logits ``[B, T, V]`` for ``input_ids`` ``[B, T]`` given slot ``context`` ``[B, S, D]``."""
        t = input_ids.shape[1]
        if t > self.max_len:
            raise ValueError(f"input length {t} exceeds max_len {self.max_len}")
        x = self._embed(input_ids, slice(0, t))
        h = self.norm_self(x)
        # Single head of width 256: SDPA's default scale 1/sqrt(256) = 1/16 as in the original.
        x = x + F.scaled_dot_product_attention(self.q_self(h), self.k_self(h), self.v_self(h), is_causal=True)
        k, v, attend, has_any = self._cross_kv(context, context_active)
        x = x + self._cross(x, k, v, attend, has_any)
        return self._head(x)

    def teacher_forced_batch(self, target_ids: Tensor, target_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Turn right-padded targets into (input_ids, labels), both ``[B, min(T+1, max_len)]``.

        input = ``[BOS] + tokens`` (pads -> PAD_ID); labels = ``tokens + [EOS]`` with
        every position after EOS set to -100 so the loss ignores it.
        """
        b, t = target_ids.shape
        mask = target_mask.to(torch.bool)
        tokens = target_ids.masked_fill(~mask, PAD_ID)
        bos = torch.full((b, 1), BOS_ID, dtype=tokens.dtype, device=tokens.device)
        input_ids = torch.cat([bos, tokens], dim=1)
        labels = torch.full((b, t + 1), IGNORE_INDEX, dtype=tokens.dtype, device=tokens.device)
        labels[:, :t] = target_ids.masked_fill(~mask, IGNORE_INDEX)
        lengths = mask.sum(dim=1)
        labels[torch.arange(b, device=tokens.device), lengths] = EOS_ID
        return input_ids[:, : self.max_len], labels[:, : self.max_len]

    @staticmethod
    def loss_and_accuracy(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Mean cross-entropy and token accuracy over positions whose label is not -100.

        With no such position the loss is a differentiable zero (not NaN) and the
        accuracy 0.
        """
        flat_logits = logits.reshape(-1, logits.shape[-1]).float()
        flat_labels = labels.reshape(-1)
        valid = flat_labels.ne(IGNORE_INDEX)
        count = valid.sum().clamp_min(1)
        loss = F.cross_entropy(flat_logits, flat_labels, ignore_index=IGNORE_INDEX, reduction="sum") / count
        correct = (flat_logits.argmax(dim=-1).eq(flat_labels) & valid).sum()
        return loss, correct.float() / count

    @torch.no_grad()
    def generate(self, context: Tensor, context_active: Tensor, max_new_tokens: int = 128) -> list[list[int]]:
        """Greedy decoding from BOS until EOS; returns each row's tokens (no BOS/EOS).

        Self-attention keys/values are cached, so each step costs O(steps so far).
        Generation stops after ``max_new_tokens`` or ``max_len`` steps.
        """
        b = context.shape[0]
        steps = min(max_new_tokens, self.max_len)
        k_cross, v_cross, attend, has_any = self._cross_kv(context, context_active)
        dtype = k_cross.dtype
        k_cache = context.new_zeros(b, steps, self.model_dim, dtype=dtype)
        v_cache = context.new_zeros(b, steps, self.model_dim, dtype=dtype)
        current = torch.full((b,), BOS_ID, dtype=torch.long, device=context.device)
        finished = [False] * b
        out: list[list[int]] = [[] for _ in range(b)]
        for step in range(steps):
            x = self._embed(current[:, None], slice(step, step + 1))  # [B, 1, D]
            h = self.norm_self(x)
            k_cache[:, step] = self.k_self(h)[:, 0]
            v_cache[:, step] = self.v_self(h)[:, 0]
            # Attending to cached positions 0..step is exactly the causal row `step`.
            x = x + F.scaled_dot_product_attention(
                self.q_self(h), k_cache[:, : step + 1], v_cache[:, : step + 1]
            )
            x = x + self._cross(x, k_cross, v_cross, attend, has_any)
            nxt = self._head(x)[:, 0].argmax(dim=-1)
            for row, token in enumerate(nxt.tolist()):
                if finished[row]:
                    continue
                if token == EOS_ID:
                    finished[row] = True
                else:
                    out[row].append(token)
            if all(finished):
                break
            current = nxt
        return out
