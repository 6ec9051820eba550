"""European options in closed form: Black–Scholes–Merton, Black-76 and Garman–Kohlhagen.

All three are the generalised Black–Scholes model: an underlying ``S`` with cost of
carry ``b = r - q`` and lognormal volatility ``sigma``, priced with forward
``F = S exp((r - q) T)`` and discount factor ``D = exp(-r T)``::

    d1 = (ln(F / K) + sigma^2 T / 2) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)
    price = w D (F N(w d1) - K N(w d2)),   w = +1 for a call, -1 for a put

- Black–Scholes–Merton (1973): ``q`` is a continuous dividend yield.
- Garman–Kohlhagen (1983): FX, ``r`` the domestic and ``q`` the foreign rate.
- Black (1976): an option on a futures price ``F``: the underlying is ``F`` itself and
  carries nothing (``b = 0``, i.e. ``q = r``).

Units and conventions are QuantLib's for its ``AnalyticEuropeanEngine`` (the reference the
tests compare against to 1e-10): rates and yields continuously compounded, time in years
Actual/365 Fixed, ``vol`` annualised, all as decimals; Greeks per unit of underlying:

- ``delta`` = dV/dS, ``gamma`` = d²V/dS² (for Black-76, with respect to ``F``);
- ``vega`` = dV/dsigma per 1.00 of volatility (divide by 100 for "per vol point");
- ``theta`` = -dV/dT per year with ``S``, ``r``, ``q`` and ``sigma`` fixed (divide by 365
  for "per calendar day"); negative when the option loses value with time;
- ``rho`` = dV/dr per 1.00 of rate with ``S`` and ``q`` fixed; ``dividend_rho`` = dV/dq
  (Garman–Kohlhagen: the foreign-rate rho). For Black-76, ``rho`` = dV/dr with the futures
  price fixed, ``-T V``: QuantLib's ``rho() + dividendRho()`` for a ``BlackProcess``
  (whose dividend curve is the rate curve), and ``dividend_rho`` is 0.

The functions broadcast their arguments, never loop in Python and do not validate (the hot
path): the domain is ``S, F, K, T, sigma > 0``; callers validate at the boundary.

>>> g = black_scholes_merton(100.0, 100.0, 1.0, 0.05, 0.0, 0.2, True)
>>> round(float(g.price), 6), round(float(g.delta), 6)
(10.450584, 0.636831)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

_INV_SQRT_2PI = 0.3989422804014327

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and Greeks of European or American options, per unit of underlying.

    Every field is an array of the broadcast shape of the inputs. Units: ``price`` in the
    strike's currency; ``delta`` dimensionless; ``gamma`` per unit of underlying price;
    ``vega``, ``rho`` and ``dividend_rho`` per 1.00 change of volatility, rate and yield;
    ``theta`` per year.
    """

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray
    dividend_rho: FloatArray


def generalized_black_scholes(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    carry_yield: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike,
) -> Greeks:
    """Price and Greeks of European options under the generalised Black–Scholes model.

    Parameters
    ----------
    spot : array_like
        Underlying price ``S`` (> 0).
    strike : array_like
        Strike ``K`` (> 0), same currency as ``spot``.
    t : array_like
        Time to expiry in years, Actual/365 Fixed (> 0).
    rate : array_like
        Continuously compounded risk-free rate ``r`` (decimal).
    carry_yield : array_like
        Continuously compounded yield ``q`` the underlying pays (dividend yield, foreign
        rate); cost of carry ``b = r - q``.
    vol : array_like
        Annualised lognormal volatility ``sigma`` (decimal, > 0).
    call : array_like of bool
        True for calls, False for puts.

    Returns
    -------
    Greeks
        QuantLib's ``AnalyticEuropeanEngine`` conventions (see the module docstring).
    """
    s, k, tt, r, q, sigma, is_call = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, t, rate, carry_yield, vol)),
        np.asarray(call, dtype=bool),
    )
    w = np.where(is_call, 1.0, -1.0)
    sqrt_t = np.sqrt(tt)
    sd = sigma * sqrt_t
    df_r = np.exp(-r * tt)
    df_q = np.exp(-q * tt)
    d1 = (np.log(s / k) + (r - q) * tt) / sd + 0.5 * sd
    d2 = d1 - sd
    n_d1 = ndtr(w * d1)
    n_d2 = ndtr(w * d2)
    pdf_d1 = _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    s_dq = s * df_q
    k_dr = k * df_r
    price = w * (s_dq * n_d1 - k_dr * n_d2)
    delta = w * df_q * n_d1
    gamma = df_q * pdf_d1 / (s * sd)
    vega = s_dq * pdf_d1 * sqrt_t
    theta = r * price - (r - q) * s * delta - 0.5 * sigma * sigma * s * s * gamma
    rho = w * tt * k_dr * n_d2
    dividend_rho = -w * tt * s_dq * n_d1
    return Greeks(price, delta, gamma, vega, theta, rho, dividend_rho)


def black_scholes_merton(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike,
) -> Greeks:
    """Black–Scholes–Merton: European options on a stock or index paying a continuous yield.

    ``dividend_rho`` is dV/d(dividend_yield). Arguments as :func:`generalized_black_scholes`.

    >>> g = black_scholes_merton(100.0, 110.0, 0.5, 0.03, 0.01, 0.25, False)
    >>> round(float(g.price), 4), round(float(g.delta), 4), round(float(g.vega), 4)
    (12.5841, -0.65, 25.9705)
    """
    return generalized_black_scholes(spot, strike, t, rate, dividend_yield, vol, call)


def garman_kohlhagen(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    domestic_rate: ArrayLike,
    foreign_rate: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike,
) -> Greeks:
    """Garman–Kohlhagen: European FX options, spot in domestic currency per foreign unit.

    The price is in domestic currency per unit of foreign currency; ``rho`` is the
    domestic-rate rho and ``dividend_rho`` the foreign-rate rho, both per 1.00.

    >>> round(float(garman_kohlhagen(1.10, 1.10, 0.25, 0.05, 0.03, 0.08, True).price), 6)
    0.020236
    """
    return generalized_black_scholes(spot, strike, t, domestic_rate, foreign_rate, vol, call)


def black76(
    forward: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike,
) -> Greeks:
    """Black (1976): European options on a futures price ``F``, premium paid up front.

    ``delta`` and ``gamma`` are with respect to ``F``; ``theta`` and ``rho`` hold ``F``
    fixed, so ``rho = -T * price`` and ``dividend_rho`` is 0.

    >>> g = black76(100.0, 100.0, 1.0, 0.05, 0.2, True)
    >>> round(float(g.price), 6), round(float(g.rho), 6)
    (7.577082, -7.577082)
    """
    g = generalized_black_scholes(forward, strike, t, rate, rate, vol, call)
    return Greeks(
        price=g.price,
        delta=g.delta,
        gamma=g.gamma,
        vega=g.vega,
        theta=g.theta,
        rho=g.rho + g.dividend_rho,
        dividend_rho=np.zeros_like(g.price),
    )
