"""Credit metrics against direct formulas and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.credit.metrics import binary_metrics, ece, ks, reliability


def ece_direct(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """The textbook formula, one bin at a time."""
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        if inside.any():
            total += inside.sum() / len(p) * abs(y[inside].mean() - p[inside].mean())
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_equals_the_direct_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.beta(1, 3, 5000)
    p[:3] = [0.0, 1.0, 0.5]  # bin edges
    y = (rng.random(5000) < np.clip(p * 1.2, 0, 1)).astype(float)
    assert ece(y, p) == pytest.approx(ece_direct(y, p), abs=1e-12)
    assert ece(y, p, bins=15) == pytest.approx(ece_direct(y, p, 15), abs=1e-12)


def test_perfectly_calibrated_bins_have_zero_ece() -> None:
    p = np.array([0.25] * 4 + [0.75] * 4)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert ece(y, p) == pytest.approx(0.0)
    mean_p, rate, count = reliability(y, p)
    assert mean_p.tolist() == [0.25, 0.75] and rate.tolist() == [0.25, 0.75]
    assert count.tolist() == [4, 4]


def test_ks_equals_the_two_sample_statistic() -> None:
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.normal(0.3, 0.1, 700), rng.normal(0.5, 0.1, 300)])
    y = np.concatenate([np.zeros(700), np.ones(300)])
    assert ks(y, p) == pytest.approx(stats.ks_2samp(p[y == 1], p[y == 0]).statistic, abs=1e-12)


def test_binary_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)  # precision at each positive
    assert m["default_rate"] == 0.5 and m["mean_pd"] == pytest.approx(0.4125)
