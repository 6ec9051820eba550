"""American options: the Barone-Adesi–Whaley (1987) quadratic approximation, vectorised.

BAW writes the American price as the European one plus an early-exercise premium that
solves an approximate (quadratic) form of the Black–Scholes PDE::

    call:  V = E(S) + A2 (S / S*)^q2   for S < S*,   V = S - K   for S >= S*
    put:   V = E(S) + A1 (S / S**)^q1  for S > S**,  V = K - S   for S <= S**

with ``E`` the generalised Black–Scholes price (:mod:`engine.options.black`), the critical
price ``S*`` solved by Newton's method from BAW's seed, and ``q1 < 0 < q2``,
``A2 = (S*/q2) (1 - e^{-qT} N(d1(S*)))``, ``A1 = -(S**/q1) (1 - e^{-qT} N(-d1(S**)))``.
The iteration, seed and special cases are those of QuantLib's
``BaroneAdesiWhaleyApproximationEngine``: with ``critical_tolerance=1e-6`` (QuantLib's
fixed value) prices equal QuantLib's to 1e-10 (tests). The default tolerance, 1e-12 of the
strike, solves ``S*`` to rounding, so the bumped Greeks below are smooth.

Special cases:

- a call with ``q <= 0`` is never exercised early: the European price (as QuantLib);
- a put with ``r <= 0`` and ``q >= 0`` is never exercised early: the European price
  (QuantLib refuses negative rates; at ``r = 0`` its Newton iteration drifts towards
  ``S** = 0``, where the premium vanishes, so its price is the European one too);
- any other negative rate is outside BAW's domain: NaN (QuantLib raises).

Greeks, per unit of underlying and in the units of :class:`~engine.options.black.Greeks`:
``delta`` and ``gamma`` are exact derivatives of the approximation (``S*`` does not depend
on ``S``); ``vega``, ``theta``, ``rho`` and ``dividend_rho`` are central differences of the
price with ``S*`` re-solved, steps of 1e-4 in vol, rate, yield and years (forward
differences where a central step would leave BAW's domain), so their truncation error is
of order 1e-8 relative.

Accuracy (an approximation, not a reference): against QuantLib's high-precision
Andersen–Lake–Offengelt engine (``QdFpAmericanEngine``, itself checked against a 2,001-step
Leisen–Reimer binomial tree to 2e-3), on 288 American options with strike 100 (spot 80, 100,
125; 30 days to 3 years; r 1%-8%; q 0 or 4%; vol 15% or 40%; calls and puts), BAW's largest
absolute error is 0.014 at 30 days, 0.10-0.11 at 6 months and 1 year, and 0.69 at 3 years;
relative to prices above 0.5 it is at most 0.3%, 1.9% and 9.9% respectively. BAW overprices
long-dated options, and far out-of-the-money puts worth a few cents by up to 31% of their
price. Use it for the Greeks of listed short-dated American options in the stream, not to
value long-dated ones (tests/options/test_american.py measures these figures).

>>> g = barone_adesi_whaley(100.0, 100.0, 1.0, 0.08, 0.0, 0.2, False)
>>> round(float(g.price), 4), round(float(g.delta), 4)
(5.2913, -0.386)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from engine.options.black import FloatArray, Greeks, generalized_black_scholes

_INV_SQRT_2PI = 0.3989422804014327
_CLOSE = 1000 * np.finfo(np.float64).eps  # QuantLib's close(x, y, 1000)
_BUMP = 1e-4


def barone_adesi_whaley(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    carry_yield: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike,
    *,
    critical_tolerance: float = 1e-12,
    max_iterations: int = 200,
) -> Greeks:
    """Price and Greeks of American options by Barone-Adesi–Whaley.

    Parameters
    ----------
    spot, strike, t, rate, carry_yield, vol, call : array_like
        As :func:`engine.options.black.generalized_black_scholes`.
    critical_tolerance : float
        Newton stops when ``|LHS - RHS| / K`` of the critical-price equation is below it
        (QuantLib uses 1e-6).
    max_iterations : int
        Cap on Newton steps (they converge in fewer than 20 on realistic inputs).

    Returns
    -------
    Greeks
        NaN where BAW is not defined (negative rate, see the module docstring).
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, t, rate, carry_yield, vol)),
        np.asarray(call, dtype=bool),
    )
    shape = arrays[0].shape
    s, k, tt, r, q, sigma, is_call = (x.ravel() for x in arrays)
    tol, cap = critical_tolerance, max_iterations
    price, delta, gamma = _value(
        s, k, tt, r, q, sigma, is_call, critical_tolerance=tol, max_iterations=cap
    )

    def bumped(tt_: FloatArray, r_: FloatArray, q_: FloatArray, v_: FloatArray) -> FloatArray:
        return _value(s, k, tt_, r_, q_, v_, is_call, critical_tolerance=tol, max_iterations=cap)[0]

    h = _BUMP
    vega = _central(lambda d: bumped(tt, r, q, sigma + d), h, sigma - h > 0.0)
    rho = _central(lambda d: bumped(tt, r + d, q, sigma), h, (r - h >= 0.0) | (r < 0.0))
    dividend_rho = _central(lambda d: bumped(tt, r, q + d, sigma), h, np.ones_like(q, dtype=bool))
    theta = -_central(lambda d: bumped(tt + d, r, q, sigma), h, tt - h > 0.0)
    return Greeks(
        *(x.reshape(shape) for x in (price, delta, gamma, vega, theta, rho, dividend_rho))
    )


def _central(price_at: object, h: float, can_go_down: np.ndarray) -> FloatArray:
    """dV/dx by a central difference, or a forward one where ``x - h`` is not allowed."""
    up = price_at(h)  # type: ignore[operator]
    down = price_at(np.where(can_go_down, -h, 0.0))  # type: ignore[operator]
    return (up - down) / np.where(can_go_down, 2.0 * h, h)


def _value(
    s: FloatArray,
    k: FloatArray,
    tt: FloatArray,
    r: FloatArray,
    q: FloatArray,
    sigma: FloatArray,
    is_call: np.ndarray,
    *,
    critical_tolerance: float,
    max_iterations: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(price, delta, gamma) of the BAW approximation."""
    euro = generalized_black_scholes(s, k, tt, r, q, sigma, is_call)
    price, delta, gamma = euro.price.copy(), euro.delta.copy(), euro.gamma.copy()
    df_r, df_q = np.exp(-r * tt), np.exp(-q * tt)
    european = np.where(is_call, df_q >= 1.0, (df_r >= 1.0) & (df_q <= 1.0))
    undefined = ~european & (df_r > 1.0)
    early = ~european & ~undefined
    price[undefined] = delta[undefined] = gamma[undefined] = np.nan
    if not early.any():
        return price, delta, gamma
    w = np.where(is_call[early], 1.0, -1.0)
    k_e, dr, dq = k[early], df_r[early], df_q[early]
    variance = sigma[early] ** 2 * tt[early]
    s_star, q_root = _critical_price(w, k_e, dr, dq, variance, critical_tolerance, max_iterations)
    sd = np.sqrt(variance)
    d1 = (np.log(s_star * dq / dr / k_e) + 0.5 * variance) / sd
    a = w * (s_star / q_root) * (1.0 - dq * ndtr(w * d1))
    s_e = s[early]
    ratio = (s_e / s_star) ** q_root
    exercise = w * (s_e - s_star) >= 0.0
    price[early] = np.where(exercise, w * (s_e - k_e), price[early] + a * ratio)
    delta[early] = np.where(exercise, w, delta[early] + a * q_root * ratio / s_e)
    gamma[early] = np.where(
        exercise, 0.0, gamma[early] + a * q_root * (q_root - 1.0) * ratio / (s_e * s_e)
    )
    return price, delta, gamma


def _critical_price(
    w: FloatArray,
    k: FloatArray,
    dr: FloatArray,
    dq: FloatArray,
    variance: FloatArray,
    tolerance: float,
    max_iterations: int,
) -> tuple[FloatArray, FloatArray]:
    """BAW's critical price ``S*`` (calls, ``w = 1``) or ``S**`` (puts), and ``q2`` or ``q1``.

    QuantLib's seed (BAW's, Barone-Adesi and Whaley 1987, eq. 26 and its put analogue) and
    Newton step on ``LHS(S) = w (S - K)`` against ``RHS(S) = E(S) + w (1 - e^{-qT} N(w d1)) S / Q``.
    """
    sd = np.sqrt(variance)
    n = 2.0 * np.log(dq / dr) / variance
    m = -2.0 * np.log(dr) / variance
    bt = np.log(dq / dr)
    qu = (-(n - 1.0) + w * np.sqrt((n - 1.0) ** 2 + 4.0 * m)) / 2.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        su = k / (1.0 - 1.0 / qu)  # qu = 0 (a put at r = 0) gives su = -0.0, as in QuantLib
        h = np.where(w > 0, -(bt + 2.0 * sd) * k / (su - k), (bt - 2.0 * sd) * k / (k - su))
        si = np.where(w > 0, k + (su - k) * (1.0 - np.exp(h)), su + (k - su) * np.exp(h))
    close_to_one = (np.abs(dr - 1.0) <= _CLOSE * dr) & (np.abs(dr - 1.0) <= _CLOSE)
    with np.errstate(divide="ignore", invalid="ignore"):
        kk = np.where(close_to_one, 2.0 / variance, -2.0 * np.log(dr) / (variance * (1.0 - dr)))
    q_root = (-(n - 1.0) + w * np.sqrt((n - 1.0) ** 2 + 4.0 * kk)) / 2.0

    every = np.arange(len(k))
    lhs, rhs, bi = _equation(every, si, w, k, dr, dq, variance, q_root)
    active = np.abs(lhs - rhs) / k > tolerance
    for _ in range(max_iterations):
        if not active.any():
            break
        i = np.flatnonzero(active)
        si[i] = (k[i] + w[i] * rhs[i] - w[i] * bi[i] * si[i]) / (1.0 - w[i] * bi[i])
        lhs[i], rhs[i], bi[i] = _equation(i, si, w, k, dr, dq, variance, q_root)
        active[i] = np.abs(lhs[i] - rhs[i]) / k[i] > tolerance
    return si, q_root


def _equation(
    i: np.ndarray,
    si: FloatArray,
    w: FloatArray,
    k: FloatArray,
    dr: FloatArray,
    dq: FloatArray,
    variance: FloatArray,
    q_root: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(LHS, RHS, dRHS/dS)`` of the critical-price equation at ``si`` for the elements ``i``."""
    x, wi, ki, dri, dqi, qi = si[i], w[i], k[i], dr[i], dq[i], q_root[i]
    sd = np.sqrt(variance[i])
    d1 = (np.log(x * dqi / dri / ki) + 0.5 * variance[i]) / sd
    nd1 = ndtr(wi * d1)
    black = wi * dri * (x * dqi / dri * nd1 - ki * ndtr(wi * (d1 - sd)))
    lhs = wi * (x - ki)
    rhs = black + wi * (1.0 - dqi * nd1) * x / qi
    slope = (
        wi * dqi * nd1 * (1.0 - 1.0 / qi)
        + wi * (1.0 - wi * dqi * _INV_SQRT_2PI * np.exp(-0.5 * d1 * d1) / sd) / qi
    )
    return lhs, rhs, slope
