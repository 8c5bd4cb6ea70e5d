"""Certainty: the min-rule, ECE exactly as the original bins it, isotonic recalibration
(fit, effect, safetensors round trip) and the overconfident error rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.isotonic import IsotonicRegression

from voltx.engine.calibration import IsotonicCalibrator, ece, min_rule, overconfident_error_rate, reliability
from voltx.errors import DataError


def test_min_rule_and_weakest_slot():
    certainty = torch.zeros(3, 16)
    active = torch.zeros(3, 16, dtype=torch.bool)
    certainty[0, [0, 4, 9]] = torch.tensor([0.9, 0.4, 0.7])
    active[0, [0, 4, 9]] = True
    certainty[1, 2] = 0.05  # not active: ignored
    certainty[2, [3, 5]] = 0.6  # a tie: the lower slot index
    active[2, [3, 5]] = True
    gamma, weakest = min_rule(certainty, active)
    assert gamma.tolist() == pytest.approx([0.4, 0.0, 0.6])
    assert weakest.tolist() == [4, -1, 3]


def test_ece_matches_a_hand_computation():
    gammas = [0.05, 0.15, 0.15, 0.7, 0.7, 0.95, 1.0]
    correct = [0, 1, 0, 1, 1, 0, 1]
    # bins: 0 -> {0.05}; 1 -> {0.15, 0.15}; 7 -> {0.7, 0.7}; 9 -> {0.95, 1.0}
    expected = (abs(0 - 0.05) * 1 + abs(0.5 - 0.15) * 2 + abs(1 - 0.7) * 2 + abs(0.5 - 0.975) * 2) / 7
    assert ece(gammas, correct) == pytest.approx(expected, abs=1e-6)
    assert ece(torch.tensor(gammas), torch.tensor(correct, dtype=torch.bool)) == pytest.approx(expected, abs=1e-6)
    counts = [b.count for b in reliability(gammas, correct)]
    assert counts == [1, 2, 0, 0, 0, 0, 0, 2, 0, 2]


def test_ece_bins_in_float32_like_the_original():
    # f32(0.7) * 10 rounds to exactly 7.0 in float32 (the Rust code) but is 6.99999988 in float64
    g = np.float32(0.7)
    assert int(np.float64(g) * 10) == 6
    assert [b.count for b in reliability([g], [1])][7] == 1
    # out-of-range gammas are clamped for binning only; the raw value is averaged
    table = reliability([-0.5, 1.5], [0, 1])
    assert table[0].count == 1 and table[0].mean_gamma == -0.5 and table[9].count == 1
    assert ece([], []) == 0.0


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overconfident gammas: P(correct | gamma) = gamma**2."""
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0, 1, n)
    return gamma, rng.uniform(0, 1, n) < gamma**2


def test_isotonic_fit_reduces_ece():
    g_fit, c_fit = miscalibrated(4000, 1)
    g_test, c_test = miscalibrated(4000, 2)
    before = ece(g_test, c_test)
    cal = IsotonicCalibrator().fit(g_fit, c_fit)
    after = ece(cal.transform(g_test), c_test)
    assert before > 0.12 and after < 0.04, (before, after)
    out = cal.transform(g_test)
    assert out.min() >= 0 and out.max() <= 1 and out.shape == (4000,)
    # the same function scikit-learn's predict computes (clip out of bounds)
    ref = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(g_fit, c_fit)
    probe = np.linspace(-0.5, 1.5, 501)
    assert np.allclose(cal.transform(probe).numpy(), ref.predict(probe), atol=1e-6)


def test_calibrator_save_load_gives_identical_transforms(tmp_path):
    g, c = miscalibrated(2000, 3)
    cal = IsotonicCalibrator().fit(g, c)
    path = cal.save(tmp_path / "gamma_calibrator.safetensors")
    back = IsotonicCalibrator.load(path)
    probe = torch.linspace(-0.2, 1.2, 1001).reshape(7, 143)
    assert torch.equal(back.transform(probe), cal.transform(probe))
    assert back.transform(probe).shape == (7, 143)
    with pytest.raises(RuntimeError, match="before fit"):
        IsotonicCalibrator().transform([0.5])


def test_calibrator_load_errors(tmp_path):
    from safetensors.torch import save_file

    save_file({"x_thresholds": torch.tensor([0.0, 1.0], dtype=torch.float64), "y_thresholds": torch.tensor([0.9, 0.1], dtype=torch.float64)},
              str(tmp_path / "falling.safetensors"))
    with pytest.raises(DataError, match="falling.safetensors: .*non-decreasing"):
        IsotonicCalibrator.load(tmp_path / "falling.safetensors")
    save_file({"weights": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(DataError, match="other.safetensors: not a calibrator"):
        IsotonicCalibrator.load(tmp_path / "other.safetensors")


def test_overconfident_error_rate():
    gammas = [0.9, 0.9, 0.7, 0.69, 0.2, 0.95, 0.8, 0.1]
    correct = [1, 0, 0, 0, 0, 1, 0, 1]
    # wrong with gamma >= 0.7: 0.9, 0.7, 0.8 -> 3 of 8
    assert overconfident_error_rate(gammas, correct) == pytest.approx(3 / 8)
    assert overconfident_error_rate(gammas, correct, high=0.85) == pytest.approx(1 / 8)
    assert overconfident_error_rate([], []) == 0.0
