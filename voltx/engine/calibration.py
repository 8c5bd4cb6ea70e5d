"""Certainty (gamma): the min-rule, calibration error, and isotonic recalibration.

* :func:`min_rule` is the original's CertaintyEngine: a frame is as certain as its least
  certain active slot (0 with no active slot); it also names that weakest slot.
* :func:`ece` is exactly the original's Expected Calibration Error
  (``crates/volt-learn/src/calibration.rs``): 10 equal bins, ``bin = min(floor(clamp(γ, 0,
  1) * 10), 9)`` computed in float32 as the Rust code does (so γ = 0.7 lands in bin 7, not
  in bin 6 as float64 arithmetic would put it), ``ECE = Σ |accuracy − mean γ| · n / N``.
* :class:`IsotonicCalibrator` is the planned JA.3 step (ECE < 0.08): an isotonic regression
  from raw γ to P(correct), fitted with scikit-learn and stored as its two threshold arrays
  in safetensors, so it ships with the model without pickle. Transforms always interpolate
  those arrays (``np.interp``: linear between thresholds, constant outside) -- the
  piecewise-linear function scikit-learn's ``predict`` computes with
  ``out_of_bounds="clip"`` (equal up to float rounding) -- so a loaded calibrator gives
  bit-identical outputs to the one that was fitted.
* :func:`overconfident_error_rate` is the JA.6 deliverable (< 8%).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from voltx.errors import DataError

FORMAT_VERSION = 1
KIND = "isotonic_calibrator"
"""The artifact kind (voltx.artifacts) of a calibrator file."""
HIGH_GAMMA = 0.7
"""The original's "high γ" (RLVF reward table): γ >= 0.7."""


def min_rule(certainty: Tensor, active: Tensor) -> tuple[Tensor, Tensor]:
    """Global γ ``[B]`` = min γ over active slots (0 if none) and the weakest slot ``[B]``
    (int64; the lowest index among ties; -1 when no slot is active)."""
    if certainty.dim() != 2 or tuple(active.shape) != tuple(certainty.shape):
        raise ValueError(f"certainty and active must both be [B, 16], got {list(certainty.shape)} and {list(active.shape)}")
    active = active.to(torch.bool)
    masked = torch.where(active, certainty, torch.full_like(certainty, float("inf")))
    lowest, weakest = masked.min(dim=-1)
    any_active = active.any(dim=-1)
    gamma = torch.where(any_active, lowest, torch.zeros_like(lowest))
    return gamma, torch.where(any_active, weakest, torch.full_like(weakest, -1))


def _flat(values, dtype) -> Tensor:
    t = values.detach().cpu() if isinstance(values, Tensor) else torch.as_tensor(np.asarray(values))
    return t.reshape(-1).to(dtype)


@dataclass(frozen=True)
class CalibrationBin:
    start: float
    end: float
    count: int
    mean_gamma: float
    accuracy: float


def reliability(confidences, correct, bins: int = 10) -> list[CalibrationBin]:
    """Per-bin count, mean γ and accuracy (the reliability diagram behind :func:`ece`)."""
    gamma = _flat(confidences, torch.float32)
    hit = _flat(correct, torch.float64)
    if gamma.shape != hit.shape:
        raise ValueError(f"confidences and correct differ in length: {gamma.numel()} vs {hit.numel()}")
    # float32, as the original: (clamped * bins as f32) as usize, capped at bins - 1
    index = torch.floor(gamma.clamp(0.0, 1.0) * torch.tensor(float(bins), dtype=torch.float32)).long().clamp(max=bins - 1)
    count = torch.bincount(index, minlength=bins)
    gamma_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, gamma.double())
    hit_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, hit)
    out = []
    for i in range(bins):
        n = int(count[i])
        out.append(CalibrationBin(i / bins, (i + 1) / bins, n,
                                  float(gamma_sum[i] / n) if n else 0.0, float(hit_sum[i] / n) if n else 0.0))
    return out


def ece(confidences, correct, bins: int = 10) -> float:
    """Expected Calibration Error: ``Σ |accuracy_b − mean γ_b| · n_b / N`` (0 for no samples).

    ``confidences``: γ per prediction (clamped to [0, 1] for binning, the raw γ averaged, as
    the original); ``correct``: bool/0-1 per prediction. Tensors, arrays or lists.
    """
    table = reliability(confidences, correct, bins)
    total = sum(b.count for b in table)
    if total == 0:
        return 0.0
    return float(sum(abs(b.accuracy - b.mean_gamma) * b.count / total for b in table))


def overconfident_error_rate(confidences, correct, high: float = HIGH_GAMMA) -> float:
    """Share of all predictions that are wrong *and* made with γ >= ``high``: the "wrong +
    overconfident" outcome of the RLVF reward table (JA.6 deliverable: < 8%). 0 for none."""
    gamma = _flat(confidences, torch.float64)
    hit = _flat(correct, torch.bool)
    if gamma.shape != hit.shape:
        raise ValueError(f"confidences and correct differ in length: {gamma.numel()} vs {hit.numel()}")
    if gamma.numel() == 0:
        return 0.0
    return float(((gamma >= high) & ~hit).double().mean())


class IsotonicCalibrator:
    """Monotone map from raw γ to calibrated P(correct), in [0, 1]."""

    def __init__(self, x_thresholds: np.ndarray | None = None, y_thresholds: np.ndarray | None = None):
        self.x_thresholds = None if x_thresholds is None else np.asarray(x_thresholds, dtype=np.float64)
        self.y_thresholds = None if y_thresholds is None else np.asarray(y_thresholds, dtype=np.float64)
        if self.fitted:
            _check_thresholds(self.x_thresholds, self.y_thresholds, "thresholds")

    @property
    def fitted(self) -> bool:
        return self.x_thresholds is not None

    def fit(self, gammas, correct) -> "IsotonicCalibrator":
        """Fit on raw ``gammas`` and bool/0-1 ``correct`` (at least one sample)."""
        from sklearn.isotonic import IsotonicRegression

        x = _flat(gammas, torch.float64).numpy()
        y = _flat(correct, torch.float64).numpy()
        if x.shape != y.shape or x.size == 0:
            raise ValueError(f"need equally many gammas and outcomes (at least one), got {x.size} and {y.size}")
        if not np.isfinite(x).all():
            raise ValueError("gammas contain NaN or inf")
        reg = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True).fit(x, y)
        self.x_thresholds = reg.X_thresholds_.astype(np.float64)
        self.y_thresholds = reg.y_thresholds_.astype(np.float64)
        return self

    def transform(self, gammas) -> Tensor:
        """Calibrated γ, same shape as ``gammas`` (float32, on its device if a tensor)."""
        if not self.fitted:
            raise RuntimeError("IsotonicCalibrator.transform before fit (or load)")
        t = gammas if isinstance(gammas, Tensor) else torch.as_tensor(np.asarray(gammas, dtype=np.float64))
        x = t.detach().cpu().double().numpy()
        y = np.interp(x, self.x_thresholds, self.y_thresholds)
        return torch.from_numpy(y).to(device=t.device, dtype=torch.float32)

    def save(self, path: str | os.PathLike[str]) -> Path:
        if not self.fitted:
            raise RuntimeError("IsotonicCalibrator.save before fit")
        from voltx import artifacts

        tensors = {"x_thresholds": torch.from_numpy(self.x_thresholds), "y_thresholds": torch.from_numpy(self.y_thresholds)}
        return artifacts.save(path, tensors, KIND, version=FORMAT_VERSION, points=int(self.x_thresholds.size))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "IsotonicCalibrator":
        from voltx import artifacts

        path = Path(path)
        tensors = artifacts.read(path, KIND, untagged=True, what="calibrator").tensors
        if "x_thresholds" not in tensors or "y_thresholds" not in tensors:
            raise DataError(f"{path}: not a calibrator: expected tensors 'x_thresholds' and 'y_thresholds', got {sorted(tensors)}")
        x, y = tensors["x_thresholds"].double().numpy(), tensors["y_thresholds"].double().numpy()
        try:
            return cls(x, y)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None


def _check_thresholds(x: np.ndarray, y: np.ndarray, what: str) -> None:
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"{what}: expected two equal-length 1-D arrays, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{what}: NaN or inf")
    if (np.diff(x) < 0).any() or (np.diff(y) < 0).any():
        raise ValueError(f"{what}: must be non-decreasing (an isotonic map)")
    if y.min() < 0.0 or y.max() > 1.0:
        raise ValueError(f"{what}: calibrated values must lie in [0, 1]")
