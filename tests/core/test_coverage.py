"""The one coverage row every VaR backtest report is built from."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.backtest.coverage import coverage, green_share
from engine.core.backtest.stats import christoffersen, kupiec, traffic_light


def test_coverage_is_the_three_tests_and_the_light_of_the_hits() -> None:
    rng = np.random.default_rng(5)
    hits = rng.random(600) < 0.02
    c = coverage(hits, 0.01)
    ind, cc = christoffersen(hits, 0.01)
    n, x = 600, int(hits.sum())
    assert (c.n, c.violations, c.rate, c.expected) == (n, x, x / n, 0.01)
    assert c.kupiec_p == kupiec(n, x, 0.01).p_value
    assert (c.christoffersen_p, c.cc_p) == (ind.p_value, cc.p_value)
    assert c.zone == traffic_light(n, x, 0.01).zone
    assert list(c.row()) == [
        "n", "violations", "rate", "expected", "kupiec_p", "christoffersen_p", "cc_p", "zone",
    ]  # fmt: skip


def test_coverage_of_no_forecast_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one forecast"):
        coverage(np.zeros(0, bool), 0.01)


def test_green_share_counts_rolling_windows_below_amber() -> None:
    hits = np.zeros(300, bool)
    hits[20:25] = True  # of the 51 windows of 250, the first 21 hold all 5 hits (amber at 99%)
    assert green_share(hits, 250, 0.01) == pytest.approx(30 / 51)
    assert np.isnan(green_share(hits[:100], 250, 0.01))
