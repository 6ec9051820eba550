"""Calibrators: Platt by maximum likelihood, isotonic as scikit-learn fits it, chosen by CV."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from models.credit import calibration


def test_platt_recovers_the_generating_parameters() -> None:
    rng = np.random.default_rng(0)
    score = rng.normal(0, 2, 200_000)
    y = (rng.random(score.size) < expit(0.6 * score - 0.8)).astype(float)
    c = calibration.fit("platt", score, y, "log-odds")
    assert c.a == pytest.approx(0.6, abs=0.01) and c.b == pytest.approx(-0.8, abs=0.02)
    assert c.apply(np.array([1.0])) == pytest.approx(expit(c.a + c.b))


def test_isotonic_equals_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    score = rng.random(3000)
    y = (rng.random(3000) < score**2).astype(float)
    c = calibration.fit("isotonic", score, y, "probability")
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(score, y)
    probe = np.concatenate([rng.random(1000), [-1.0, 2.0], c.x])
    np.testing.assert_allclose(c.apply(probe), iso.predict(probe), atol=1e-12)


def test_none_is_the_models_own_probability() -> None:
    assert calibration.fit("none", [], [], "log-odds").apply(np.array([0.0])) == 0.5
    assert calibration.fit("none", [], [], "probability").apply(np.array([0.3])) == 0.3


def test_choice_is_platt_or_isotonic_with_the_evidence_of_all_three() -> None:
    rng = np.random.default_rng(2)
    score = rng.normal(0, 1, 4000)
    y = (rng.random(4000) < expit(2 * score + 1)).astype(float)  # miscalibrated margin
    folds = rng.integers(0, 4, 4000)
    method, evidence = calibration.choose(score, y, "log-odds", folds)
    assert method in ("platt", "isotonic")
    assert set(evidence) == {"none", "platt", "isotonic"}
    assert evidence[method]["brier"] == min(evidence[m]["brier"] for m in ("platt", "isotonic"))
    assert evidence["platt"]["brier"] < evidence["none"]["brier"]  # calibration helped
