"""A book of European option positions on many underlyings, and its revaluation under scenarios.

Positions are quantities in units of underlying (contracts x multiplier; negative is short).
The book's market state is one spot and one implied volatility per position's underlying
(``vol`` per position, so a smile is allowed), with a rate and a dividend yield per
underlying. Risk factors over a horizon of ``h`` years are, per scenario, the log return
``r_u`` of each underlying and one log change ``v`` of implied volatility common to all
(each option's vol becomes ``vol * exp(v)``, a parallel proportional move such as a VIX
move); time moves on by ``h``.

:func:`revalue` is the full revaluation every approximation in :mod:`engine.options.var` is
measured against: each option repriced in closed form at ``S e^{r_u}``, ``vol e^{v}``,
``T - h``. It is a numba kernel over positions x scenarios (one core): the log-moneyness,
discount factors and ``sigma sqrt(T - h)`` of each position are computed once; the inner
loop runs over scenarios on SIMD lanes with the branch-free normal CDF of
:mod:`engine.options.normal_cdf` (one exponential per repricing, shared by ``N(d1)`` and
``N(d2)``) and lets the compiler fuse multiply-adds (``fastmath={"contract"}``, nothing
else). Each scenario's P&L equals
:func:`engine.options.black.generalized_black_scholes` repricing every option, hence
QuantLib, to 1e-10 relative (tests/options/test_var.py); 10,000 positions in 10,000
scenarios take 0.45 s on one core (docs/options.md). European exercise only: American
positions are outside this kernel; they are repriced element by element, Barone-Adesi–Whaley,
by :func:`engine.options.pricing.price_vanilla`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from engine.options.black import FloatArray, Greeks, generalized_black_scholes
from engine.options.normal_cdf import exp_arith, norm_cdf_from

IntArray = np.ndarray


@dataclass(frozen=True, slots=True)
class OptionBook:
    """European option positions (arrays by position) on ``n_underlyings`` underlyings.

    Attributes
    ----------
    underlying : numpy.ndarray of int
        Index of each position's underlying, in ``[0, n_underlyings)``.
    strike, t : numpy.ndarray
        Strike (price currency) and time to expiry (years, Act/365F, > horizon).
    call : numpy.ndarray of bool
    quantity : numpy.ndarray
        Units of underlying held (contracts x multiplier; negative is short).
    spot, rate, dividend_yield : numpy.ndarray
        Per underlying: price, continuously compounded rate and yield (decimals).
    vol : numpy.ndarray
        Per position: annualised implied volatility (decimal).
    """

    underlying: IntArray
    strike: FloatArray
    t: FloatArray
    call: np.ndarray
    quantity: FloatArray
    spot: FloatArray
    rate: FloatArray
    dividend_yield: FloatArray
    vol: FloatArray

    @property
    def n_underlyings(self) -> int:
        """Number of underlyings (length of ``spot``)."""
        return len(self.spot)

    def greeks(self) -> Greeks:
        """Price and Greeks of each option per unit of underlying (QuantLib's units)."""
        u = self.underlying
        return generalized_black_scholes(
            self.spot[u], self.strike, self.t, self.rate[u], self.dividend_yield[u], self.vol,
            self.call,
        )  # fmt: skip

    def value(self) -> float:
        """Mark-to-model value of the book (price currency)."""
        return float(self.quantity @ self.greeks().price)


@dataclass(frozen=True, slots=True)
class Sensitivities:
    """The book's Taylor expansion in the risk factors ``x = (r_1..r_U, v)`` over the horizon.

    ``P&L ~ theta_h + delta @ x + 0.5 * sum(gamma * x_r**2)`` in currency, with
    ``delta_u = sum q Delta S_u`` (currency per unit log return), ``delta_v = sum q vega
    vol`` (per unit relative change of vol, ``e^v - 1``), ``gamma_u = sum q (Gamma S_u^2 + Delta S_u)`` (the
    second derivative in the log return), ``theta_h = h sum q theta``. Cross-gamma between
    underlyings is zero by construction; vanna and volga are left out (delta-gamma-vega).
    """

    delta: FloatArray
    gamma: FloatArray
    theta_h: float


def sensitivities(book: OptionBook, greeks: Greeks, horizon: float) -> Sensitivities:
    """Aggregate per-position Greeks into the book's factor sensitivities (per underlying)."""
    u, q, n = book.underlying, book.quantity, book.n_underlyings
    s = book.spot[u]
    delta_cash = q * greeks.delta * s
    delta = np.empty(n + 1)
    delta[:n] = np.bincount(u, weights=delta_cash, minlength=n)
    delta[n] = float(q @ (greeks.vega * book.vol))
    gamma = np.asarray(
        np.bincount(u, weights=q * greeks.gamma * s * s + delta_cash, minlength=n), np.float64
    )
    return Sensitivities(delta, gamma, horizon * float(q @ greeks.theta))


def revalue(
    book: OptionBook, returns: FloatArray, vol_change: FloatArray, horizon: float
) -> FloatArray:
    """Full-revaluation P&L of the book in each scenario (currency; negative is a loss).

    Parameters
    ----------
    returns : numpy.ndarray, shape (n_scenarios, n_underlyings)
        Log returns of the underlyings over the horizon.
    vol_change : numpy.ndarray, shape (n_scenarios,)
        Log change of every option's implied volatility.
    horizon : float
        Years the scenario spans (1/365 for a day); every expiry must be later.
    """
    if np.any(book.t <= horizon):
        raise ValueError("every option must expire after the horizon")
    u = book.underlying
    s = book.spot[u]
    r, q = book.rate[u], book.dividend_yield[u]
    t1 = book.t - horizon
    base = book.quantity @ book.greeks().price
    log_moneyness = np.log(s / book.strike) + (r - q) * t1
    forward_value = s * np.exp(-q * t1)  # S e^{-q (T-h)}, times e^{r_u} in a scenario
    strike_value = book.strike * np.exp(-r * t1)
    sd = book.vol * np.sqrt(t1)
    w = np.where(book.call, 1.0, -1.0)
    returns = np.asarray(returns, dtype=np.float64)
    pnl = _revalue_kernel(
        np.ascontiguousarray(returns.T),
        np.ascontiguousarray(np.exp(returns).T),
        np.exp(np.asarray(vol_change, dtype=np.float64)),
        u.astype(np.int64),
        log_moneyness,
        np.exp(log_moneyness),
        forward_value,
        strike_value,
        sd,
        w,
        book.quantity.astype(np.float64),
    )
    return pnl - base


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _revalue_kernel(
    returns_t: np.ndarray,
    growth_t: np.ndarray,
    vol_factor: np.ndarray,
    u: np.ndarray,
    log_moneyness: np.ndarray,
    moneyness: np.ndarray,
    forward_value: np.ndarray,
    strike_value: np.ndarray,
    sd: np.ndarray,
    w: np.ndarray,
    quantity: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    # Positions outside, scenarios inside: the inner loop reads contiguous rows (one
    # underlying's log returns and growth factors across scenarios), has no branch and no
    # library call, and so runs on SIMD lanes; each scenario's total still adds the
    # positions in book order. One exponential serves both normal CDFs:
    # d1^2 - d2^2 = 2 L with L = log_moneyness + x, so exp(-d2^2/2) = exp(-d1^2/2) e^L and
    # e^L = moneyness * growth.
    n_scenarios = returns_t.shape[1]
    out = np.zeros(n_scenarios)
    for i in range(len(u)):
        x_row = returns_t[u[i]]
        g_row = growth_t[u[i]]
        lm, em, fv, kv = log_moneyness[i], moneyness[i], forward_value[i], strike_value[i]
        sd_i, wi, qi = sd[i], w[i], quantity[i]
        for k in range(n_scenarios):
            sdi = sd_i * vol_factor[k]
            d1 = (lm + x_row[k]) / sdi + 0.5 * sdi
            d2 = d1 - sdi
            gauss1 = exp_arith(-0.5 * d1 * d1)
            gauss2 = gauss1 * (em * g_row[k])
            n1 = norm_cdf_from(wi * d1, gauss1)
            n2 = norm_cdf_from(wi * d2, gauss2)
            out[k] += qi * wi * (fv * g_row[k] * n1 - kv * n2)
    return out
