"""The LVM's evaluation: the model's cosine to the true next vector beside the trivial predictors.

On the same windows (the validation part) every evaluation reports the model and three
baselines a next-vector model must beat to mean anything:

* copy-last: predict the last context vector;
* context mean: predict the mean of the context vectors;
* linear: ridge regression from the concatenated context to the target's change from the
  context mean, closed form, fitted on the fit part, its regularisation chosen on the dev part
  (the fit part's last windows when there is no dev part). Shrunk towards the context mean, not
  towards zero: strong regularisation gives back the context-mean baseline, so the linear bar is
  never below it on dev, and it is the same formulation as the models' (``residual = "mean"``).
  Shrunk towards zero it fell below the context mean on the built-in corpus (README).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

RIDGE_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


def gather(vectors: Tensor, windows: Tensor) -> tuple[Tensor, Tensor]:
    """Context [B, k, d] and target [B, d] of row windows [B, k + 1]."""
    rows = vectors[windows]
    return rows[:, :-1], rows[:, -1]


def mean_cosine(pred: Tensor, target: Tensor) -> float:
    return float(F.cosine_similarity(pred.double(), target.double(), dim=-1).mean())


def with_bias(x: Tensor) -> Tensor:
    return torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)


def ridge_predict(w: Tensor, context: Tensor) -> Tensor:
    """The context mean plus the linear change: context [B, k, d] -> [B, d] (float64)."""
    return context.double().mean(dim=1) + with_bias(context.flatten(1)) @ w


def ridge_baseline(vectors: Tensor, fit: Tensor, dev: Tensor) -> tuple[Tensor, float]:
    """W [(k*d + 1), d] minimising ||[x 1] W - (y - mean(x))||^2 + alpha * n ||W||^2 on the fit
    windows (float64 normal equations, formed once), for the alpha of ``RIDGE_ALPHAS`` with the
    best dev cosine."""
    if len(dev) == 0:  # no dev part: choose on the fit part's last tenth
        cut = max(1, int(0.9 * len(fit)))
        fit, dev = fit[:cut], fit[cut:] if cut < len(fit) else fit
    cx, cy = gather(vectors, fit)
    dx, dy = gather(vectors, dev)
    x1 = with_bias(cx.flatten(1))
    gram, moment = x1.T @ x1, x1.T @ (cy.double() - cx.double().mean(dim=1))
    eye = torch.eye(gram.shape[0], dtype=torch.float64) * len(x1)
    solved = {a: torch.linalg.solve(gram + a * eye, moment) for a in RIDGE_ALPHAS}
    best = max(RIDGE_ALPHAS, key=lambda a: mean_cosine(ridge_predict(solved[a], dx), dy))
    return solved[best], best


def baselines(vectors: Tensor, windows: Tensor, ridge: Tensor) -> dict[str, float]:
    context, target = gather(vectors, windows)
    return {
        "cosine_copy_last": mean_cosine(context[:, -1], target),
        "cosine_context_mean": mean_cosine(context.mean(dim=1), target),
        "cosine_linear": mean_cosine(ridge_predict(ridge, context), target),
    }


@torch.no_grad()
def model_cosine(model: torch.nn.Module, vectors: Tensor, windows: Tensor, batch: int,
                 device: torch.device) -> tuple[float, float]:
    """(mean cosine, mean MSE) of ``model`` on ``windows``; the model is put back in train mode."""
    model.eval()
    cos_sum, mse_sum = 0.0, 0.0
    try:
        for start in range(0, len(windows), batch):
            context, target = gather(vectors, windows[start:start + batch])
            pred = model(context.to(device)).double().cpu()
            cos_sum += float(F.cosine_similarity(pred, target.double(), dim=-1).sum())
            mse_sum += float(((pred - target.double()) ** 2).mean(dim=-1).sum())
    finally:
        model.train()
    return cos_sum / len(windows), mse_sum / len(windows)


def evaluator(model, vectors: Tensor, valid: Tensor, dev: Tensor, fixed: dict[str, float], batch: int,
              device: torch.device) -> Callable[[], dict[str, float]]:
    """The stage's ``evaluate``: the model on the validation (and dev) part, beside ``fixed`` baselines."""

    def evaluate() -> dict[str, float]:
        cosine, mse = model_cosine(model, vectors, valid, batch, device)
        out = {"cosine": cosine, "mse": mse, **fixed}
        if len(dev):
            out["dev_cosine"] = model_cosine(model, vectors, dev, batch, device)[0]
        return out

    return evaluate


def summary(ev: dict[str, float]) -> str:
    """The epoch line's middle: the model's cosine beside each baseline's."""
    return (f"valid cos {ev['cosine']:.4f} (copy-last {ev['cosine_copy_last']:.4f}, context mean "
            f"{ev['cosine_context_mean']:.4f}, ridge {ev['cosine_linear']:.4f})"
            + (f" | dev cos {ev['dev_cosine']:.4f}" if "dev_cosine" in ev else ""))
