"""Backtest statistics against direct formulas, textbook tables and simulated truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from engine.core.backtest.stats import (
    acerbi_szekely_z2,
    christoffersen,
    christoffersen_independence,
    diebold_mariano,
    independence_lr,
    kupiec,
    kupiec_lr,
    pinball_loss,
    qlike,
    traffic_light,
    transitions,
    zone_thresholds,
)


@pytest.mark.parametrize(
    ("n", "x", "alpha"), [(250, 0, 0.01), (250, 3, 0.01), (1000, 70, 0.05), (500, 500, 0.05)]
)
def test_kupiec_equals_the_binomial_likelihood_ratio(n: int, x: int, alpha: float) -> None:
    restricted = stats.binom.logpmf(x, n, alpha)
    unrestricted = stats.binom.logpmf(x, n, x / n)
    lr = -2 * (restricted - unrestricted)
    assert kupiec(n, x, alpha).statistic == pytest.approx(lr, abs=1e-9)
    assert kupiec(n, x, alpha).p_value == pytest.approx(stats.chi2.sf(lr, 1), abs=1e-12)


def test_the_array_statistics_judge_many_windows_at_once_as_one_at_a_time() -> None:
    # Every violation count of a 250-day window at two levels, and transition counts with
    # empty cells: each element equals the binomial likelihood ratio of its own window.
    x = np.tile(np.arange(251), 2)
    alpha = np.repeat([0.01, 0.05], 251)
    lr = kupiec_lr(250, x, alpha)
    direct = -2 * (stats.binom.logpmf(x, 250, alpha) - stats.binom.logpmf(x, 250, x / 250))
    np.testing.assert_allclose(lr, np.maximum(direct, 0.0), rtol=1e-9, atol=1e-9)

    cells = np.array([[230, 9, 9, 1], [249, 0, 0, 0], [0, 0, 0, 249], [200, 25, 24, 0], [0] * 4])
    ind = independence_lr(*cells.T)
    for row, value in zip(cells, ind, strict=True):
        one = christoffersen_independence(*(int(v) for v in row)).statistic
        assert value == one or (np.isnan(value) and np.isnan(one))
    assert np.isnan(ind[-1])  # no transition: undefined, not zero
    assert ind[0] == pytest.approx(0.7055, abs=1e-4)


def test_independence_is_defined_and_varies_when_no_two_violations_are_consecutive() -> None:
    rng = np.random.default_rng(0)
    values = set()
    for _ in range(20):
        hits = np.zeros(250, bool)
        hits[rng.choice(np.arange(0, 250, 2), size=rng.integers(1, 12), replace=False)] = True
        n00, n01, n10, n11 = transitions(hits)
        assert n11 == 0
        result = christoffersen_independence(n00, n01, n10, n11)
        assert np.isfinite(result.statistic) and 0 <= result.p_value <= 1
        values.add(round(result.statistic, 9))
    assert len(values) > 5  # not a constant


def test_clustered_violations_are_rejected_and_scattered_ones_are_not() -> None:
    clustered = np.zeros(500, bool)
    clustered[100:110] = True
    scattered = np.zeros(500, bool)
    scattered[::50] = True
    assert christoffersen(clustered, 0.02)[0].p_value < 1e-6
    assert christoffersen(scattered, 0.02)[0].p_value > 0.05


def test_conditional_coverage_is_the_sum_of_pof_and_independence() -> None:
    hits = np.random.default_rng(1).random(750) < 0.03
    ind, cc = christoffersen(hits, 0.01)
    assert cc.statistic == pytest.approx(
        kupiec(750, int(hits.sum()), 0.01).statistic + ind.statistic
    )
    assert cc.p_value == pytest.approx(stats.chi2.sf(cc.statistic, 2))


def test_traffic_light_reproduces_the_basel_table_and_works_for_any_window() -> None:
    assert zone_thresholds(250, 0.01) == (5, 10)
    assert [traffic_light(250, x, 0.01).zone for x in range(12)] == ["green"] * 5 + [
        "amber"
    ] * 5 + ["red"] * 2
    amber, red = zone_thresholds(1000, 0.05)
    assert stats.binom.cdf(amber - 1, 1000, 0.05) < 0.95 <= stats.binom.cdf(amber, 1000, 0.05)
    assert (
        traffic_light(1000, red, 0.05).zone == "red"
        and traffic_light(1000, red - 1, 0.05).zone == "amber"
    )


def test_z2_is_near_zero_for_a_correct_model_and_negative_when_es_is_too_small() -> None:
    rng = np.random.default_rng(2)
    sigma = rng.uniform(0.005, 0.03, 20_000)
    losses = -rng.standard_normal(20_000) * sigma
    alpha = 0.025
    z = stats.norm.ppf(1 - alpha)
    var = z * sigma
    es = sigma * stats.norm.pdf(z) / alpha
    fair = acerbi_szekely_z2(losses, var, es, alpha)
    assert abs(fair.statistic) < 0.1 and fair.p_value > 0.05
    low = acerbi_szekely_z2(losses, var * 0.8, es * 0.8, alpha)
    assert low.statistic < -0.3 and low.p_value < 1e-4


def test_pinball_loss_matches_the_direct_formula_and_prefers_the_true_quantile() -> None:
    rng = np.random.default_rng(3)
    r = rng.standard_normal(50_000) * 0.01
    true_var = -np.quantile(r, 0.01)
    direct = np.mean(np.maximum(0.01 * (r + true_var), (0.01 - 1) * (r + true_var)))
    assert pinball_loss(r, np.full(r.size, true_var), 0.99) == pytest.approx(direct)
    assert pinball_loss(r, np.full(r.size, true_var), 0.99) < pinball_loss(
        r, np.full(r.size, true_var * 1.3), 0.99
    )


def test_qlike_is_zero_at_the_truth_and_positive_elsewhere() -> None:
    assert qlike(np.array([2.0]), np.array([2.0]))[0] == 0.0
    assert (qlike(np.array([2.0, 2.0]), np.array([1.0, 4.0])) > 0).all()


def test_diebold_mariano_detects_a_better_forecast() -> None:
    rng = np.random.default_rng(4)
    noise = rng.standard_normal(2000)
    better = (noise * 0.5) ** 2
    worse = (noise * 0.5 + 0.3) ** 2
    result = diebold_mariano(better, worse)
    assert result.statistic < 0 and result.p_value < 1e-6
    same = diebold_mariano(worse, worse + rng.standard_normal(2000) * 1e-3)
    assert same.p_value > 0.01
