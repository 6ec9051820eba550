"""Parametric normal VaR and ES against scipy and numerical integration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from engine.core.var import ParametricNormal


@pytest.mark.parametrize("level", [0.9, 0.95, 0.975, 0.99, 0.999])
def test_var_is_the_loss_quantile(level: float) -> None:
    sigma = np.array([0.004, 0.01, 0.05])
    var = ParametricNormal(var_levels=(level,), es_level=0.975).var(sigma)[level]
    # P(loss > VaR) = 1 - level for loss = -r, r ~ N(0, sigma^2)
    np.testing.assert_allclose(stats.norm.sf(var / sigma), 1 - level, rtol=1e-10)


@pytest.mark.parametrize("level", [0.95, 0.975, 0.99])
def test_es_is_the_mean_loss_beyond_var(level: float) -> None:
    sigma = 0.02
    var = stats.norm.ppf(level) * sigma
    tail_mean = integrate.quad(lambda x: x * stats.norm.pdf(x, scale=sigma), var, np.inf)[0] / (
        1 - level
    )
    es = ParametricNormal(var_levels=(0.99,), es_level=level).es(np.array([sigma]))[0]
    assert es == pytest.approx(tail_mean, rel=1e-8)
    assert es > var


def test_nan_sigma_gives_nan_risk() -> None:
    method = ParametricNormal()
    assert np.isnan(method.var(np.array([np.nan]))[0.99][0])
    assert np.isnan(method.es(np.array([np.nan]))[0])


@pytest.mark.parametrize("level", [0.5, 1.0, 0.2])
def test_rejects_levels_outside_range(level: float) -> None:
    with pytest.raises(ValueError, match=r"strictly between 0\.5 and 1"):
        ParametricNormal(var_levels=(level,))
