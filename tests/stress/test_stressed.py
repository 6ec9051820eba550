"""Stressed VaR/ES: the vectorised worst-window search against a brute-force scan."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from engine.stress.stressed import linear_pnl, stressed_risk, tail_count, window_risk


def brute_force(pnl: np.ndarray, window: int, var_level: float, es_level: float):
    """One window at a time, sorted in full: the definition, slowly."""
    best = None
    for start in range(len(pnl) - window + 1):
        losses = np.sort(pnl[start : start + window])
        var = -losses[math.ceil(round(window * (1 - var_level), 9)) - 1]
        es = -losses[: math.ceil(round(window * (1 - es_level), 9))].mean()
        if best is None or var > best[1]:
            best = (start, var, es)
    return best


@pytest.mark.parametrize("seed", range(4))
def test_the_window_search_agrees_with_a_brute_force_scan(seed):
    rng = np.random.default_rng(seed)
    vol = np.exp(np.cumsum(rng.normal(0, 0.05, 1500)))  # volatility clusters
    pnl = rng.standard_t(4, 1500) * vol * 1e4
    found = stressed_risk(pnl, window=250, horizon=1)
    start, var, es = brute_force(pnl, 250, 0.99, 0.975)
    assert (found.start, found.end) == (start, start + 249)
    assert found.var_1d == pytest.approx(var, rel=1e-12)
    assert found.es_1d == pytest.approx(es, rel=1e-12)


def test_on_the_real_sp500_the_stress_window_is_in_the_2008_crisis():
    from producers.sources import sp500_realized

    frame = sp500_realized()
    returns = np.diff(np.log(frame["price"].to_numpy()))[:, None]
    pnl = linear_pnl(returns, np.array([1e6]))
    found = stressed_risk(pnl, window=250)
    days = frame["timestamp"].iloc[1:].dt.date.to_numpy()
    start, var, es = brute_force(pnl, 250, 0.99, 0.975)
    assert found.start == start and found.var_1d == pytest.approx(var, rel=1e-12)
    assert found.var == pytest.approx(var * math.sqrt(10), rel=1e-12)
    assert found.es == pytest.approx(es * math.sqrt(10), rel=1e-12)
    # the third-worst day decides the 99% VaR of 250: 1987 had one crash day, 2008 many
    assert days[found.start] <= date(2008, 10, 15) <= days[found.end]


def test_tails_count_whole_observations():
    assert tail_count(250, 0.99) == 3 and tail_count(250, 0.975) == 7
    var, es = window_risk(np.array([-3.0, 1.0, -1.0, 2.0]), 4, 0.75, 0.5)
    assert list(var) == [3.0] and list(es) == [2.0]
