"""The ``avg`` method (engine.core.var.average): the equal-weight mean of other methods."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine.core import RiskSpec
from engine.core.var.average import AVERAGE, AVERAGE_METHODS, mean_available
from engine.core.volatility.fitting import RefitSchedule
from engine.offline.runs import run_prices

#: Small windows and frequent refits so that GJR fits and empirical quantiles start early.
SPEC = RiskSpec(
    vol_models=("ewma", "gjr"),
    var_levels=(0.99,),
    window=200,
    min_obs=50,
    garch_window=300,
    garch_refit=RefitSchedule(first=100, every=50, delay=0),
)


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    """500 daily prices with GARCH-like volatility clusters and Student-t shocks (seeded)."""
    rng = np.random.default_rng(21)
    n, var, r = 500, 1e-4, []
    for _ in range(n):
        ret = np.sqrt(var) * rng.standard_t(5) * np.sqrt(3 / 5)
        r.append(ret)
        var = 2e-6 + 0.85 * var + 0.1 * ret**2
    stamps = pd.date_range("2020-01-01", periods=n + 1, freq="D", tz="UTC")
    price = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    return pd.DataFrame({"timestamp": stamps, "symbol": "X", "price": price})


def test_avg_is_the_mean_of_its_parts_var_and_es_at_every_level(prices: pd.DataFrame) -> None:
    run = run_prices(prices, SPEC)
    j = run.method_index(AVERAGE)
    parts = [run.method_index(m) for m in AVERAGE_METHODS]
    both = np.isfinite(run.var[:, parts, :]).all(axis=(1, 2))
    assert both.sum() > 300  # the comparison covers most of the series
    for out in (run.var, run.es, run.var_before, run.es_before):
        ok = np.isfinite(out[:, parts, :]).all(axis=(1, 2))
        np.testing.assert_allclose(out[ok, j], out[ok][:, parts].mean(axis=1), rtol=1e-12)
    # the mean lies strictly between its parts wherever they differ
    lo, hi = run.var[both][:, parts].min(axis=1), run.var[both][:, parts].max(axis=1)
    differ = hi > lo
    assert differ.any()
    inner = run.var[both, j][differ]
    assert ((inner > lo[differ]) & (inner < hi[differ])).all()


def test_while_one_part_warms_up_avg_is_the_other_part(prices: pd.DataFrame) -> None:
    """GJR's first fit comes after 100 returns; ewma-fhs reports 50 residuals after its warm-up."""
    run = run_prices(prices, SPEC)
    j, gjr, ewma = (run.method_index(m) for m in (AVERAGE, "gjr-mix", "ewma-fhs"))
    only_ewma = np.isnan(run.var[:, gjr, -1]) & np.isfinite(run.var[:, ewma, -1])
    assert only_ewma.sum() >= 25
    np.testing.assert_array_equal(run.var[only_ewma, j], run.var[only_ewma, ewma])
    none = np.isnan(run.var[:, gjr, -1]) & np.isnan(run.var[:, ewma, -1])
    assert none.any() and np.isnan(run.var[none, j]).all()


def test_avg_is_causal_a_prefix_gives_the_same_forecasts(prices: pd.DataFrame) -> None:
    whole, prefix = run_prices(prices, SPEC), run_prices(prices.iloc[:300], SPEC)
    j = whole.method_index(AVERAGE)
    np.testing.assert_array_equal(prefix.var[:, j], whole.var[:300, j])
    np.testing.assert_array_equal(prefix.es[:, j], whole.es[:300, j])


def test_a_champion_may_have_avg_as_a_candidate(prices: pd.DataFrame) -> None:
    """``avg`` first: live until a challenger is eligible (judged on 250 returns)."""
    spec = replace(SPEC, method="champion", champion_methods=(AVERAGE, "gjr-t"))
    assert spec.champion_vol_models == ("ewma", "gjr")
    assert spec.vol_of("champion") == "gjr"  # avg's first part
    run = run_prices(prices, spec)
    j, avg, t = (run.method_index(m) for m in ("champion", AVERAGE, "gjr-t"))
    early = np.arange(len(prices)) < 300
    np.testing.assert_array_equal(run.var[early, j], run.var[early, avg])
    finite = np.isfinite(run.var[:, j, -1])
    is_one = (run.var[:, j] == run.var[:, avg]).all(axis=1) | (run.var[:, j] == run.var[:, t]).all(
        axis=1
    )
    assert is_one[finite].all()


def test_avg_exists_only_when_its_parts_are_methods_of_the_spec() -> None:
    assert AVERAGE in RiskSpec().methods
    assert AVERAGE not in RiskSpec(vol_models=("ewma",), method="ewma-normal").methods
    with pytest.raises(ValueError, match="avg"):
        RiskSpec(vol_models=("ewma",), method=AVERAGE)


@pytest.mark.parametrize(
    "parts", [("gjr-mix",), ("gjr-mix", "gjr-mix"), ("gjr-mix", "champion"), ("avg", "hs")]
)
def test_avg_needs_two_distinct_single_methods(parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="avg"):
        RiskSpec(average_methods=parts)


def test_the_settings_default_parts_are_the_specs() -> None:
    from engine.config import Settings

    assert Settings().risk.average_methods == AVERAGE_METHODS == RiskSpec().average_methods


def test_mean_available_ignores_missing_parts() -> None:
    cols = np.array([[[1.0, 4.0], [3.0, np.nan]], [[np.nan, np.nan], [np.nan, np.nan]]])
    out = mean_available(cols)
    np.testing.assert_array_equal(out[0], [2.0, 4.0])
    assert np.isnan(out[1]).all()
