"""Next-vector models: [B, k, d] context -> [B, d] prediction of the next vector.

One frame for all four sequence bodies (the LVM handoff's baselines LSTM and GRU, a small
causal transformer standing in for DistilGPT-2, and Mamba): a linear projection d -> hidden,
the body, its output at the last position, a linear projection hidden -> d. With ``residual``
``"mean"`` (``"last"``) the prediction is the context's mean (last vector) plus that output, and
the output layer starts at zero, so an untrained model is exactly the context-mean (copy-last)
baseline and training only has to learn the change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

RESIDUALS = ("mean", "last", "none")


class CausalTransformer(nn.Module):
    """Pre-norm transformer encoder with a causal mask and learned positions."""

    def __init__(self, hidden: int, layers: int, heads: int, context: int, dropout: float):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"lvm.hidden ({hidden}) must be a multiple of lvm.heads ({heads})")
        self.positions = nn.Parameter(torch.zeros(context, hidden))
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: Tensor) -> Tensor:
        k = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(k, device=x.device, dtype=x.dtype)
        return self.norm(self.body(x + self.positions[:k], mask=mask, is_causal=True))


class Recurrent(nn.Module):
    def __init__(self, kind: str, hidden: int, layers: int, dropout: float):
        super().__init__()
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = cls(hidden, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.rnn(x)[0]


class Mamba(nn.Module):
    """transformers' MambaModel fed with embeddings (no vocabulary): its CUDA kernels when
    ``mamba-ssm`` is installed (the ``cuda`` extra), its plain PyTorch path anywhere else."""

    def __init__(self, hidden: int, layers: int, state_size: int):
        super().__init__()
        from transformers import MambaConfig, MambaModel

        config = MambaConfig(vocab_size=1, hidden_size=hidden, num_hidden_layers=layers, state_size=state_size,
                             expand=2, conv_kernel=4, use_cache=False)
        self.body = MambaModel(config)
        self.body.embeddings.weight.requires_grad_(False)  # a vocabulary of one, never used: inputs are embeddings

    def forward(self, x: Tensor) -> Tensor:
        return self.body(inputs_embeds=x, use_cache=False).last_hidden_state


class NextVector(nn.Module):
    def __init__(self, kind: str, dim: int, hidden: int, layers: int, heads: int = 4, state_size: int = 16,
                 context: int = 5, dropout: float = 0.0, residual: str = "mean"):
        super().__init__()
        self.args = {"kind": kind, "dim": dim, "hidden": hidden, "layers": layers, "heads": heads,
                     "state_size": state_size, "context": context, "dropout": dropout, "residual": residual}
        if residual not in RESIDUALS:
            raise ValueError(f"residual must be one of {', '.join(RESIDUALS)}, got {residual!r}")
        self.residual = residual
        self.inp = nn.Linear(dim, hidden)
        if kind in ("lstm", "gru"):
            self.body: nn.Module = Recurrent(kind, hidden, layers, dropout)
        elif kind == "transformer":
            self.body = CausalTransformer(hidden, layers, heads, context, dropout)
        elif kind == "mamba":
            self.body = Mamba(hidden, layers, state_size)
        else:
            raise ValueError(f"unknown model kind {kind!r}")
        self.out = nn.Linear(hidden, dim)
        if residual != "none":
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, context: Tensor) -> Tensor:
        y = self.out(self.body(self.inp(context))[:, -1])
        if self.residual == "mean":
            return context.mean(dim=1) + y
        return context[:, -1] + y if self.residual == "last" else y


def next_vector_loss(pred: Tensor, target: Tensor, mse_weight: float) -> dict[str, Tensor]:
    """``1 - cos`` plus ``mse_weight`` times the MSE: the handoff's cosine + MSE objective."""
    cos = F.cosine_similarity(pred, target, dim=-1).mean()
    mse = F.mse_loss(pred, target)
    return {"loss": (1.0 - cos) + mse_weight * mse, "cos_dist": 1.0 - cos, "mse": mse}
