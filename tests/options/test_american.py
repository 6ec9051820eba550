"""American options by Barone-Adesi–Whaley: QuantLib's BAW engine reproduced, its accuracy
against an accurate American pricer measured, and the Greeks checked by differences.

The accurate reference is QuantLib's ``QdFpAmericanEngine`` with its high-precision scheme
(Andersen, Lake and Offengelt 2016, about 1e-8 here); QuantLib's Leisen–Reimer binomial
tree converges to it (its error halves as the steps double: 2e-3 at 2,001 steps), which is
what ``test_the_accurate_reference_agrees_with_a_fine_binomial_tree`` shows.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.options.american import barone_adesi_whaley
from engine.options.black import generalized_black_scholes


@pytest.fixture(scope="module")
def american_grid(case):
    """288 American options: moneyness 0.8-1.25, 30 days to 3 years, r 1%-8%, q 0-4%."""
    return [
        case(s, 100.0, d, r, q, v, c)
        for s, d, r, q, v, c in itertools.product(
            (80.0, 100.0, 125.0),
            (30, 182, 365, 1095),
            (0.01, 0.05, 0.08),
            (0.0, 0.04),
            (0.15, 0.4),
            (True, False),
        )
    ]


def columns(cases):
    names = ("spot", "strike", "t", "rate", "carry_yield", "vol", "call")
    values = [[c.spot, c.strike, c.t, c.rate, c.carry_yield, c.vol, c.call] for c in cases]
    return {n: np.array([row[i] for row in values]) for i, n in enumerate(names)}


def test_with_quantlibs_tolerance_prices_equal_quantlibs_baw_engine_to_1e10(
    american_grid, quantlib
) -> None:
    ours = barone_adesi_whaley(**columns(american_grid), critical_tolerance=1e-6).price
    reference = quantlib("bsm").prices(american_grid, "baw")
    assert float(np.max(np.abs(ours - reference) / np.maximum(1.0, reference))) <= 1e-10


def test_the_default_tolerance_solves_the_critical_price_tighter_than_quantlib(
    american_grid, quantlib
) -> None:
    """QuantLib stops at |LHS - RHS| <= 1e-6 K; the default goes on to 1e-12 K."""
    ours = barone_adesi_whaley(**columns(american_grid)).price
    reference = quantlib("bsm").prices(american_grid, "baw")
    assert float(np.max(np.abs(ours - reference))) <= 1e-4


def test_baw_error_against_an_accurate_american_pricer_is_as_documented(
    american_grid, quantlib
) -> None:
    """The figures of engine/options/american.py's docstring (strike 100): absolute error
    0.014 at 30 days, 0.11 up to a year, 0.69 at 3 years; relative (prices above 0.5)
    0.3%, 1.9%, 9.9%."""
    a = columns(american_grid)
    ours = barone_adesi_whaley(**a).price
    accurate = quantlib("bsm").prices(american_grid, "qdfp")
    error = np.abs(ours - accurate)
    relative = error / np.maximum(accurate, 0.5)
    days = np.rint(a["t"] * 365)
    for horizon, absolute, rel in ((30, 0.014, 0.003), (365, 0.112, 0.0193), (1095, 0.687, 0.0992)):
        within = days <= horizon
        print(
            f"{horizon:5d} days: max error {error[within].max():.4f}, relative {relative[within].max():.4f}"
        )
        assert float(error[within].max()) <= absolute
        assert float(relative[within & (accurate > 0.5)].max()) <= rel


def test_the_accurate_reference_agrees_with_a_fine_binomial_tree(american_grid, quantlib) -> None:
    sample = american_grid[::24]
    pricer = quantlib("bsm")
    accurate = pricer.prices(sample, "qdfp")
    tree = pricer.prices(sample, "binomial", 2001)
    assert float(np.max(np.abs(tree - accurate))) <= 2e-3


def test_american_is_worth_at_least_the_european_and_the_intrinsic_value(
    american_grid,
) -> None:
    a = columns(american_grid)
    american = barone_adesi_whaley(**a).price
    european = generalized_black_scholes(**a).price
    intrinsic = np.maximum(np.where(a["call"], 1.0, -1.0) * (a["spot"] - a["strike"]), 0.0)
    assert np.all(american >= european - 1e-12) and np.all(american >= intrinsic - 1e-12)


def test_without_a_reason_to_exercise_early_the_american_is_the_european() -> None:
    """Calls on an underlying paying nothing (q <= 0); puts when money has no time value (r <= 0)."""
    args = (np.array([90.0, 110.0]), 100.0, 0.7)
    calls = barone_adesi_whaley(*args, 0.05, 0.0, 0.3, True)
    puts = barone_adesi_whaley(*args, -0.01, 0.02, 0.3, False)
    for american, european in (
        (calls, generalized_black_scholes(*args, 0.05, 0.0, 0.3, True)),
        (puts, generalized_black_scholes(*args, -0.01, 0.02, 0.3, False)),
    ):
        np.testing.assert_array_equal(american.price, european.price)
        np.testing.assert_array_equal(american.delta, european.delta)


def test_outside_baws_domain_the_result_is_nan_not_a_guess() -> None:
    g = barone_adesi_whaley(100.0, 100.0, 1.0, -0.01, 0.02, 0.3, True)
    assert np.isnan(g.price) and np.isnan(g.delta)


def test_in_the_exercise_region_the_value_is_intrinsic_with_unit_delta() -> None:
    g = barone_adesi_whaley(40.0, 100.0, 1.0, 0.08, 0.0, 0.2, False)
    assert float(g.price) == 60.0 and float(g.delta) == -1.0 and float(g.gamma) == 0.0


@pytest.mark.parametrize("call", [True, False])
def test_baw_greeks_are_derivatives_of_the_baw_price(call: bool) -> None:
    base = {"spot": 97.0, "strike": 100.0, "t": 0.8, "rate": 0.06, "carry_yield": 0.03, "vol": 0.3}

    def price(**bumped: float) -> float:
        return float(barone_adesi_whaley(**{**base, **bumped}, call=call).price)

    g = barone_adesi_whaley(**base, call=call)
    h = 1e-3
    s = base["spot"]
    assert float(g.delta) == pytest.approx(
        (price(spot=s + h) - price(spot=s - h)) / (2 * h), rel=1e-6
    )
    second = (price(spot=s + h) - 2 * price() + price(spot=s - h)) / h**2
    assert float(g.gamma) == pytest.approx(second, rel=1e-4)
    assert float(g.vega) == pytest.approx((price(vol=0.31) - price(vol=0.29)) / 0.02, rel=1e-3)
    assert float(g.theta) == pytest.approx(-(price(t=0.81) - price(t=0.79)) / 0.02, rel=1e-3)
    assert float(g.rho) == pytest.approx((price(rate=0.061) - price(rate=0.059)) / 0.002, rel=1e-3)
