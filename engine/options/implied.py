"""Implied volatility from option prices: Jäckel's "Let's be rational" (2015).

The Black implied volatility of a European price is computed by ``py_lets_be_rational``
(MIT, the reference implementation's Python port): a rational initial guess and two
Householder steps reach full double precision everywhere the price carries information,
including far in the wings where Newton's method stalls. This module only maps our
inputs onto its normalised, undiscounted Black price and maps its out-of-range signals
to NaN; it is a Python loop over the elements (about 15 µs each), so it belongs on the
path that ingests quotes, not on the per-tick Greeks path.

Conventions as :mod:`engine.options.black`: time Act/365F in years, rates and yields
continuously compounded, volatility annualised, all decimals.

>>> from engine.options.black import black_scholes_merton
>>> price = black_scholes_merton(100.0, 90.0, 0.5, 0.03, 0.01, 0.3, False).price
>>> float(implied_vol_bsm(price, 100.0, 90.0, 0.5, 0.03, 0.01, False).round(12))
0.3
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from py_lets_be_rational import implied_volatility_from_a_transformed_rational_guess
from py_lets_be_rational.exceptions import VolatilityValueException

from engine.options.black import FloatArray

_DBL_MAX = 1.7976931348623157e308


def implied_vol_black(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    discount: ArrayLike,
    call: ArrayLike,
) -> FloatArray:
    """Black (1976) implied volatility of discounted European option prices.

    Parameters
    ----------
    price : array_like
        Option price (discounted, same currency as the strike).
    forward : array_like
        Forward (or futures) price ``F`` of the underlying for the option's expiry.
    strike : array_like
        Strike ``K`` (> 0).
    t : array_like
        Time to expiry in years, Act/365F (> 0).
    discount : array_like
        Discount factor to expiry, ``exp(-r t)``.
    call : array_like of bool
        True for calls.

    Returns
    -------
    numpy.ndarray
        Annualised volatility (decimal). NaN where the price is below the option's
        intrinsic value or above its upper bound (``F`` for a call, ``K`` for a put,
        undiscounted), where no volatility reproduces it, or where an input is not finite
        or positive.
    """
    p, f, k, tt, df, is_call = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (price, forward, strike, t, discount)),
        np.asarray(call, dtype=bool),
    )
    out = np.empty(p.shape, dtype=np.float64)
    flat = out.reshape(-1)
    for i, args in enumerate(
        zip(p.flat, f.flat, k.flat, tt.flat, df.flat, is_call.flat, strict=True)
    ):
        flat[i] = _one(*args)
    return out


def implied_vol_bsm(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    call: ArrayLike,
) -> FloatArray:
    """Black–Scholes–Merton implied volatility (Garman–Kohlhagen: ``dividend_yield`` = foreign rate).

    The price is mapped to Black's: forward ``S exp((r - q) t)``, discount ``exp(-r t)``;
    see :func:`implied_vol_black` for the NaN cases.
    """
    s, tt, r, q = (np.asarray(x, dtype=np.float64) for x in (spot, t, rate, dividend_yield))
    forward = s * np.exp((r - q) * tt)
    return implied_vol_black(price, forward, strike, tt, np.exp(-r * tt), call)


def _one(price: float, forward: float, strike: float, t: float, df: float, call: bool) -> float:
    values = (price, forward, strike, t, df)
    if not all(math.isfinite(v) for v in values) or min(forward, strike, t, df) <= 0.0:
        return math.nan
    try:
        vol = implied_volatility_from_a_transformed_rational_guess(
            price / df, forward, strike, t, 1.0 if call else -1.0
        )
    except VolatilityValueException:
        return math.nan
    if not math.isfinite(vol) or abs(vol) >= _DBL_MAX or vol < 0.0:
        return math.nan
    return float(vol)
