"""Distribution factors of the VaR methods against scipy and numerical integration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from engine.core.dists import CornishFisher, StudentTable, normal_factors, student_factors

LEVELS = (0.95, 0.975, 0.99)


@pytest.mark.parametrize("level", [0.9, 0.95, 0.975, 0.99, 0.999])
def test_normal_var_is_the_loss_quantile_and_es_the_tail_mean(level: float) -> None:
    var, es = normal_factors(level)
    assert stats.norm.sf(var) == pytest.approx(1 - level, rel=1e-10)
    tail = integrate.quad(lambda x: x * stats.norm.pdf(x), var, np.inf)[0] / (1 - level)
    assert es == pytest.approx(tail, rel=1e-8)


@pytest.mark.parametrize("nu", [4.5, 6.0, 12.0, 50.0])
def test_student_factors_are_those_of_the_unit_variance_t(nu: float) -> None:
    scale = np.sqrt((nu - 2) / nu)
    for level in LEVELS:
        var, es = student_factors(level, nu)
        assert stats.t.sf(var / scale, nu) == pytest.approx(1 - level, rel=1e-9)
        tail = integrate.quad(lambda x: x * stats.t.pdf(x / scale, nu) / scale, var, np.inf)[0] / (
            1 - level
        )
        assert es == pytest.approx(tail, rel=1e-7)


def test_student_table_interpolates_to_one_in_a_million() -> None:
    table = StudentTable(LEVELS)
    nus = np.exp(np.random.default_rng(0).uniform(np.log(4.02), np.log(1000), 500))
    var, es = table.factors(np.append(nus, [np.inf, np.nan]))
    ref = np.array([[student_factors(level, nu) for level in LEVELS] for nu in nus])
    np.testing.assert_allclose(var[:-2], ref[:, :, 0], rtol=1e-6)
    np.testing.assert_allclose(es[:-2], ref[:, :, 1], rtol=1e-6)
    np.testing.assert_allclose(var[-2], [normal_factors(level)[0] for level in LEVELS], rtol=1e-12)
    assert np.isnan(var[-1]).all() and np.isnan(es[-1]).all()


@pytest.mark.parametrize(("skew", "kurt"), [(-0.8, 2.5), (0.3, 1.0), (-0.2, 0.4)])
def test_cornish_fisher_es_is_exact_against_quadrature(skew: float, kurt: float) -> None:
    cf = CornishFisher(LEVELS)
    var, es = cf.factors(np.array([skew]), np.array([kurt]))

    def cf_quantile(p: float) -> float:
        z = stats.norm.ppf(p)
        return (
            z
            + (z * z - 1) * skew / 6
            + (z**3 - 3 * z) * kurt / 24
            - (2 * z**3 - 5 * z) * skew**2 / 36
        )

    for j, level in enumerate(LEVELS):
        tail = 1 - level
        assert var[0, j] == pytest.approx(-cf_quantile(tail), rel=1e-12)
        assert es[0, j] == pytest.approx(
            -integrate.quad(cf_quantile, 0, tail, limit=200)[0] / tail, rel=1e-9
        )


def test_cornish_fisher_outside_its_domain_gives_no_forecast() -> None:
    var, es = CornishFisher(LEVELS).factors(np.array([3.0, np.nan]), np.array([30.0, 1.0]))
    assert np.isnan(var).all() and np.isnan(es).all()
