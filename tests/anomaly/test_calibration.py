"""Online calibration: one threshold means the same rarity on every stream."""

from __future__ import annotations

import numpy as np
import pytest

from engine.anomaly.calibration import (
    TailCalibrator,
    score_from_surprisal,
    surprisal_from_score,
)
from engine.anomaly.detectors.base import combine


def exceedance_rate(values: np.ndarray, threshold: float, *, warm: int = 2000) -> float:
    cal = TailCalibrator("c", ("x",), halflife=5000)
    cal.ensure(1)
    s = cal.update(np.zeros(len(values), np.int64), values.reshape(-1, 1))[:, 0]
    return float((s[warm:] >= threshold).mean())


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng, n: rng.exponential(3.0, n),
        lambda rng, n: np.abs(rng.standard_normal(n)) * 1e-4,
        lambda rng, n: rng.lognormal(2.0, 0.5, n),
    ],
    ids=["exponential", "half-normal-tiny-scale", "lognormal"],
)
def test_false_alarm_rate_at_two_is_near_nominal_whatever_the_scale(draw) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    rate = exceedance_rate(draw(rng, 60_000), 2.0)
    assert 0.003 < rate < 0.02  # nominal 0.01, light tails conservative


def test_causal_scores_do_not_depend_on_later_rows() -> None:
    rng = np.random.default_rng(1)
    x = rng.exponential(1.0, (3000, 1))
    a = TailCalibrator("c", ("x",))
    b = TailCalibrator("c", ("x",))
    a.ensure(1)
    b.ensure(1)
    full = a.update(np.zeros(3000, np.int64), x)
    part = b.update(np.zeros(2000, np.int64), x[:2000])
    np.testing.assert_array_equal(full[:2000], part)


def test_anomalies_are_not_learnt_and_frozen_calibration_does_not_move() -> None:
    rng = np.random.default_rng(2)
    cal = TailCalibrator("c", ("x",))
    cal.ensure(1)
    cal.update(np.zeros(5000, np.int64), rng.exponential(1.0, (5000, 1)))
    before = cal.slot_state(0)
    frozen = cal.score(np.zeros(3, np.int64), np.array([[1.0], [50.0], [2.0]]))
    assert all(np.array_equal(before[k], v) for k, v in cal.slot_state(0).items())
    assert frozen[1, 0] > 10
    # one outlier is scored but not learnt: the next normal value scores the same
    learnt = cal.update(np.zeros(2, np.int64), np.array([[50.0], [2.0]]))
    assert learnt[1, 0] == pytest.approx(frozen[2, 0])


def test_prior_calibrates_a_new_key_from_its_first_value() -> None:
    rng = np.random.default_rng(3)
    cal = TailCalibrator("c", ("x",)).with_prior(rng.exponential(1.0, (5000, 1)))
    cal.ensure(2)
    s = cal.update(np.array([1]), np.array([[9.2]]))
    assert s[0, 0] == pytest.approx(4.0, abs=0.5)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="level"):
        TailCalibrator("c", ("x",), level=0.4)
    with pytest.raises(ValueError, match="halflife"):
        TailCalibrator("c", ("x",), halflife=5)
    with pytest.raises(ValueError, match="at least one channel"):
        TailCalibrator("c", ())
    with pytest.raises(ValueError, match="shape"):
        TailCalibrator("c", ("x",)).update(np.zeros(2, np.int64), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="threshold"):
        surprisal_from_score(1.0)


def test_score_and_combination_stay_in_the_unit_interval() -> None:
    s = np.array([0.0, 0.5, 4.0, 12.0, np.nan])
    score = score_from_surprisal(s)
    assert np.all((score[:-1] >= 0) & (score[:-1] <= 1)) and np.isnan(score[-1])
    combined = combine(np.array([[3.0, 3.0], [np.nan, 0.0]]))
    assert combined[0] == pytest.approx(3.0 - np.log10(2.0)) and combined[1] == 0.0
