"""The progress and epoch lines of a training stage, derived from the named terms of its step.

One format for every stage (the kit's and a bare ``Stage``'s alike)::

    [decoder] [Epoch 1/3] Step 7/40 | Loss: 2.3456 (C: 1.2345 R: 0.9876) | Acc: 41.20% | LR: 2.5e-4 | 45.2 samples/sec
    [decoder] [Epoch 1/3] Complete | Train Loss: 2.1234 (C: ... R: ...) | <summary of the evaluation> | Time: 12.3s
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence


def fmt_lr(lr: float) -> str:
    """2.5e-4 style, as in the seed's progress lines."""
    mantissa, exp = f"{lr:.1e}".split("e")
    return f"{mantissa}e{int(exp)}"


@dataclass(frozen=True)
class Lines:
    """How a stage's progress and epoch lines read, from the named terms of its step."""

    tag: str
    """``[<stage>] `` before every line; empty for the translator's seed lines, which had none."""
    epochs: int
    labels: Mapping[str, str]
    """Short names of loss terms in the lines (``{"contrastive": "C"}``); others show their own name."""
    shown: Mapping[str, str]
    """Measurements shown as shares in the progress line, by label (``{"token_acc": "Acc"}``)."""
    metrics: Sequence[str]
    digits: int
    summary: Callable[[dict[str, float]], str] | None

    def losses(self, values: Mapping[str, float]) -> str:
        """``1.2345 (C: 0.1234 R: 0.5678)``: the total, then every other loss term."""
        terms = [f"{self.labels.get(k, k)}: {v:.{self.digits}f}" for k, v in values.items() if k != "loss" and k not in self.metrics]
        return f"{values.get('loss', 0.0):.{self.digits}f}" + (f" ({' '.join(terms)})" if terms else "")

    def progress(self, info: dict[str, Any]) -> str:
        shares = " ".join(f"{label}: {info['metrics'][k]:.2%}" for k, label in self.shown.items() if k in info["metrics"])
        return (f"{self.tag}[Epoch {info['epoch']}/{info['epochs']}] Step {info['batch']}/{info['per_epoch']} | "
                f"Loss: {self.losses(info['losses'])} | " + (f"{shares} | " if shares else "")
                + f"LR: {fmt_lr(info['lr'])} | {info['samples_per_sec']:.1f} samples/sec")

    def epoch(self, epoch: int, means: dict[str, float], evaluation: dict[str, float], seconds: float) -> str:
        parts = [f"{self.tag}[Epoch {epoch}/{self.epochs}] Complete | Train Loss: {self.losses(means)}"]
        if self.summary is not None:
            parts.append(self.summary(evaluation))
        elif evaluation:
            parts.append(" ".join(f"{k} {v:.4g}" for k, v in evaluation.items()))
        parts.append(f"Time: {seconds:.1f}s")
        return " | ".join(parts)
