"""European pricing: price and every Greek equal QuantLib's AnalyticEuropeanEngine to 1e-10.

Tolerance, the same for every quantity: ``|ours - QuantLib| <= 1e-10 * max(1, |QuantLib|)``,
i.e. absolute 1e-10 for values up to 1 and relative 1e-10 above (prices and Greeks far in
the wings are tiny numbers whose last digits neither library resolves, so a purely relative
test there would compare rounding noise). Measured on this grid: at most 7e-12.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.options.black import (
    black76,
    black_scholes_merton,
    garman_kohlhagen,
    generalized_black_scholes,
)

GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")


def assert_equal_to_1e10(ours: object, reference: dict[str, np.ndarray]) -> None:
    for name in GREEKS:
        value, expected = getattr(ours, name), reference[name]
        worst = float(np.max(np.abs(value - expected) / np.maximum(1.0, np.abs(expected))))
        assert worst <= 1e-10, f"{name}: worst scaled difference {worst:.2e}"


def test_black_scholes_merton_equals_quantlib_on_the_grid(grid, grid_arrays, quantlib) -> None:
    a = grid_arrays
    ours = black_scholes_merton(
        a["spot"], a["strike"], a["t"], a["rate"], a["carry_yield"], a["vol"], a["call"]
    )
    assert_equal_to_1e10(ours, quantlib("bsm").greeks(grid))


def test_garman_kohlhagen_equals_quantlib_with_the_foreign_rate_as_yield(
    grid, grid_arrays, quantlib
) -> None:
    a = grid_arrays
    ours = garman_kohlhagen(
        a["spot"] / 100, a["strike"] / 100, a["t"], a["rate"], a["carry_yield"], a["vol"], a["call"]
    )
    fx_grid = [replace(c, spot=c.spot / 100, strike=c.strike / 100) for c in grid]
    assert_equal_to_1e10(ours, quantlib("gk").greeks(fx_grid))


def test_black76_equals_quantlib_black_process_with_rho_at_fixed_futures_price(
    grid, grid_arrays, quantlib
) -> None:
    a = grid_arrays
    ours = black76(a["spot"], a["strike"], a["t"], a["rate"], a["vol"], a["call"])
    assert_equal_to_1e10(ours, quantlib("black76").greeks(grid))
    np.testing.assert_allclose(ours.rho, -a["t"] * ours.price, rtol=1e-13, atol=1e-13)


def test_put_call_parity_holds_to_rounding(grid_arrays) -> None:
    """C - P = S exp(-qT) - K exp(-rT), and C - P has the Greeks of that forward (to rounding)."""
    a = grid_arrays
    args = (a["spot"], a["strike"], a["t"], a["rate"], a["carry_yield"], a["vol"])
    call = generalized_black_scholes(*args, True)
    put = generalized_black_scholes(*args, False)
    s, k, t, r, q = a["spot"], a["strike"], a["t"], a["rate"], a["carry_yield"]
    forward_value = s * np.exp(-q * t) - k * np.exp(-r * t)
    np.testing.assert_allclose(call.price - put.price, forward_value, rtol=0, atol=1e-12 * 200)
    np.testing.assert_allclose(call.delta - put.delta, np.exp(-q * t), rtol=0, atol=1e-14)
    np.testing.assert_allclose(call.gamma, put.gamma, rtol=1e-13, atol=0)
    np.testing.assert_allclose(call.vega, put.vega, rtol=1e-13, atol=0)
    np.testing.assert_allclose(call.rho - put.rho, t * k * np.exp(-r * t), rtol=0, atol=1e-11)


def test_greeks_are_the_derivatives_they_claim_to_be() -> None:
    """Central differences of the price reproduce each Greek (per 1.00, theta per year)."""
    base = {
        "spot": 103.0,
        "strike": 100.0,
        "t": 0.4,
        "rate": 0.03,
        "carry_yield": 0.01,
        "vol": 0.27,
    }

    def price(**bumped: float) -> float:
        return float(generalized_black_scholes(**{**base, **bumped}, call=False).price)

    g = generalized_black_scholes(**base, call=False)
    h = 1e-4
    fd = {
        "delta": (price(spot=103 + h) - price(spot=103 - h)) / (2 * h),
        "vega": (price(vol=0.27 + h) - price(vol=0.27 - h)) / (2 * h),
        "rho": (price(rate=0.03 + h) - price(rate=0.03 - h)) / (2 * h),
        "dividend_rho": (price(carry_yield=0.01 + h) - price(carry_yield=0.01 - h)) / (2 * h),
        "theta": -(price(t=0.4 + h) - price(t=0.4 - h)) / (2 * h),
    }
    for name, value in fd.items():
        assert float(getattr(g, name)) == pytest.approx(value, rel=1e-6), name


def test_inputs_broadcast_and_scalars_give_zero_dimensional_arrays() -> None:
    g = black_scholes_merton(np.array([90.0, 100.0, 110.0]), 100.0, 0.5, 0.02, 0.0, 0.2, True)
    assert g.price.shape == (3,) and np.all(np.diff(g.price) > 0)
    assert black_scholes_merton(100.0, 100.0, 0.5, 0.02, 0.0, 0.2, True).price.shape == ()
